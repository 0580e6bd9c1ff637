// Package secrettest spells a secret the ways a server may echo it, and
// finds it again in text, for the tests and fuzz targets of code that must
// never keep or print one. Holds is written apart from secret.String.In, the
// code it checks: regular expressions and encoding/json rather than a
// scanner.
package secrettest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf16"
)

// Spellings are named spellings of a key, for table tests: each is a
// function of the key. All but "exact" would pass a byte-for-byte match.
var Spellings = map[string]func(key string) string{
	"exact":      func(k string) string { return k },
	"upper case": strings.ToUpper,
	"mixed case": func(k string) string { return Spell(k, 0x1111111111111111) },
	"first letter escaped": func(k string) string {
		return fmt.Sprintf(`\u%04X`, []rune(k)[0]) + k[len(string([]rune(k)[0])):]
	},
	"every letter escaped": func(k string) string { return Spell(k, 0xaaaaaaaaaaaaaaaa) },
	"split by an escape": func(k string) string {
		r := []rune(k)
		mid := len(r) / 2
		return string(r[:mid]) + fmt.Sprintf(`\u%04x`, r[mid]) + string(r[mid+1:])
	},
	"escaped and upper case": func(k string) string { return Spell(strings.ToUpper(k), 0x2222222222222222) },
	"percent-encoded":        func(k string) string { return Spell(k, ^uint64(0)) },
	"escaped twice": func(k string) string {
		return strings.ReplaceAll(Spell(k, 0x2222222222222222), `\u`, `\\u`)
	},
}

// Spell writes key with each character spelled as two bits of mask say,
// the bits of character i at 2*i mod 64: 0 as it is, 1 in the other case (a
// 'k' as the Kelvin sign when bit 63 is set too), 2 as a \uXXXX escape
// (surrogate pairs beyond the BMP; upper-case hex when bit 62 is set), 3 as
// %XX escapes of its UTF-8 bytes.
func Spell(key string, mask uint64) string {
	var b strings.Builder
	for i, r := range []rune(key) {
		switch mask >> (2 * i % 64) & 3 {
		case 0:
			b.WriteRune(r)
		case 1:
			switch {
			case (r == 'k' || r == 'K') && mask>>63 == 1:
				b.WriteRune('\u212a')
			case unicode.IsUpper(r):
				b.WriteRune(unicode.ToLower(r))
			default:
				b.WriteRune(unicode.ToUpper(r))
			}
		case 2:
			format := `\u%04x`
			if mask>>62&1 == 1 {
				format = `\u%04X`
			}
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&b, format, u)
			}
		case 3:
			for _, c := range []byte(string(r)) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
	}
	return b.String()
}

var escapes = regexp.MustCompile(`\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|(?:%[0-9a-fA-F]{2})+|\\["\\/bfnrt]`)

// Holds reports whether text holds key, in any case, once every escape
// Spell writes (and JSON's one-letter ones) is decoded, as often as
// decoding changes the text.
func Holds(text, key string) bool {
	for range 4 {
		decoded := escapes.ReplaceAllStringFunc(text, func(e string) string {
			if e[0] == '%' {
				s, err := url.PathUnescape(e)
				if err != nil {
					return e
				}
				return s
			}
			var s string
			if json.Unmarshal([]byte(`"`+e+`"`), &s) != nil {
				return e
			}
			return s
		})
		if strings.Contains(strings.ToLower(decoded), strings.ToLower(key)) ||
			strings.Contains(strings.ToLower(text), strings.ToLower(key)) {
			return true
		}
		if decoded == text {
			return false
		}
		text = decoded
	}
	return false
}

// HoldsJSON reports whether the JSON document doc holds key: as Holds in
// its bytes, or in the decoded text of any of its strings, object keys and
// numbers. Text that is not JSON is only looked at as Holds does.
func HoldsJSON(doc []byte, key string) bool {
	if Holds(string(doc), key) {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return false
	}
	return holdsValue(v, key)
}

func holdsValue(v any, key string) bool {
	switch v := v.(type) {
	case string:
		return Holds(v, key)
	case json.Number:
		return Holds(string(v), key)
	case []any:
		for _, e := range v {
			if holdsValue(e, key) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if Holds(k, key) || holdsValue(e, key) {
				return true
			}
		}
	}
	return false
}
