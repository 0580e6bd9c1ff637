package secret

import (
	"bytes"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
)

// A server that echoes a secret back (a debugging proxy, an error page that
// repeats the request) need not echo it byte for byte: JSON may escape any
// character (\u0053 for S), a URL may percent-encode it, and some servers
// change its case. Matching the bytes alone would let such an echo through
// to stored answers and logs, so In, Redact and RedactJSON match every
// spelling: each character of the secret as it is, in another case (Unicode
// simple folding), as a \uXXXX escape (a surrogate pair beyond the BMP), a
// one-letter JSON escape (\/, \\, \", \t, ...) or a %XX escape of its UTF-8
// bytes, in any mix. A spelling that escapes the escapes (JSON text that is
// itself a string in JSON, \\u0053) is found as well, since a match may start
// at any byte.

// In reports whether text holds s in any spelling. The empty secret is in
// no text.
func (s String) In(text string) bool { return s.Matcher().In(text) }

// Redact returns text with every spelling of s in it replaced by Redacted.
func (s String) Redact(text string) string { return s.Matcher().Redact(text) }

// RedactJSON returns doc, a valid JSON document, with s redacted where a
// reader of the JSON would find it: in the decoded text of each string,
// object keys included (Redact on the text, written back as a JSON string),
// and in any other value, which becomes the string Redacted. The result is
// valid JSON, and everything else in it is doc's bytes unchanged; doc itself
// is returned when s is not in it. For text that is not JSON, use Redact.
func (s String) RedactJSON(doc []byte) []byte { return s.Matcher().RedactJSON(doc) }

// RedactJSON is String.RedactJSON for m's secret.
func (m *Matcher) RedactJSON(doc []byte) []byte {
	if len(m.key) == 0 {
		return doc
	}
	var out []byte // nil until the first change
	done := 0
	replace := func(start, end int, with []byte) {
		out = append(append(out, doc[done:start]...), with...)
		done = end
	}
	for i := 0; i < len(doc); {
		switch c := doc[i]; {
		case c == '"':
			end := jsontext.StringEnd(doc, i)
			if text, ok := jsontext.String(doc[i:end]); ok && m.In(text) {
				replace(i, end, jsontext.AppendString(nil, m.Redact(text)))
			}
			i = end
		case isScalar(c):
			end := i + 1
			for end < len(doc) && isScalar(doc[end]) {
				end++
			}
			if m.In(string(doc[i:end])) {
				replace(i, end, jsontext.AppendString(nil, Redacted))
			}
			i = end
		default: // structure and white space
			i++
		}
	}
	if out == nil {
		return doc
	}
	return append(out, doc[done:]...)
}

// isScalar reports whether c belongs to a JSON number, true, false or null.
func isScalar(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '+' || c == '.'
}

// A Matcher finds the spellings of one secret, as String's In, Redact and
// RedactJSON do, each of which makes one for its call: a secret looked for
// in every answer (a client's API key) is better served by one Matcher made
// once, since making it is most of the work for a short text. It holds its
// secret and prints as "[redacted]"; as with String, a struct that holds one
// must keep it behind a pointer or in an exported field, since fmt cannot
// call methods on unexported struct fields.
type Matcher struct {
	key []rune
	// first holds the bytes a spelling can start with, so that most of a
	// text is passed over at the cost of a lookup.
	first [256]bool
	// lead holds the first bytes of the secret's first character in each
	// case: those of first that can start a spelling without escapes.
	lead []byte
}

// Format writes "[redacted]" for every verb, as String's does: a Matcher
// holds its secret.
func (Matcher) Format(f fmt.State, verb rune) { String("").Format(f, verb) }

// Matcher returns the Matcher of s.
func (s String) Matcher() *Matcher {
	m := &Matcher{key: []rune(string(s))}
	if len(m.key) == 0 {
		return m
	}
	m.first['\\'], m.first['%'] = true, true
	r := m.key[0]
	for {
		b := string(r)[0]
		m.first[b] = true
		if bytes.IndexByte(m.lead, b) < 0 {
			m.lead = append(m.lead, b)
		}
		if r = unicode.SimpleFold(r); r == m.key[0] {
			break
		}
	}
	return m
}

// Clean reports whether doc holds no spelling of m's secret, in its bytes
// or, if doc is JSON, in the decoded text of any of its names and values,
// so that Redact and RedactJSON would return it as it is. It costs a few
// scans at the speed of bytes.IndexByte, and tells only for the usual
// answer: a doc with a backslash, a percent sign or invalid UTF-8 in it is
// never Clean, and is left to them.
func (m *Matcher) Clean(doc []byte) bool {
	// Only '\\' and '%' start escapes (see readings). Without them, a
	// spelling is the secret's characters, each as it is or in another case,
	// and starts with a byte of lead; and a JSON string decodes to its own
	// bytes, being valid UTF-8 (invalid UTF-8 would decode to U+FFFD, which a
	// secret may hold), so that a spelling in a value would be one in doc.
	if bytes.IndexByte(doc, '\\') >= 0 || bytes.IndexByte(doc, '%') >= 0 || !utf8.Valid(doc) {
		return false
	}
	for _, b := range m.lead {
		for i := 0; i < len(doc); i++ {
			j := bytes.IndexByte(doc[i:], b)
			if j < 0 {
				break
			}
			if i += j; m.plainAt(doc, i) {
				return false
			}
		}
	}
	return true
}

// plainAt reports whether doc[i:] starts with the secret's characters, each
// as it is or in another case: the only spelling in text without escapes.
func (m *Matcher) plainAt(doc []byte, i int) bool {
	for _, k := range m.key {
		r, size := utf8.DecodeRune(doc[i:])
		if r == utf8.RuneError && size <= 1 || !sameLetter(r, k) {
			return false
		}
		i += size
	}
	return true
}

// at returns the end of a spelling of the secret that starts at text[i], or
// -1; never a match for the empty secret.
func (m *Matcher) at(text string, i int) int {
	if len(m.key) == 0 || !m.first[text[i]] {
		return -1
	}
	return matchAt(text, i, m.key)
}

// In is String.In for m's secret.
func (m *Matcher) In(text string) bool {
	for i := 0; i < len(text); i++ {
		if m.at(text, i) >= 0 {
			return true
		}
	}
	return false
}

// Redact is String.Redact for m's secret.
func (m *Matcher) Redact(text string) string {
	var b strings.Builder
	done := 0 // text[:done] is in b, or needs no change when b is empty
	for i := 0; i < len(text); {
		end := m.at(text, i)
		if end < 0 {
			i++
			continue
		}
		b.WriteString(text[done:i])
		b.WriteString(Redacted)
		i, done = end, end
	}
	if done == 0 {
		return text
	}
	b.WriteString(text[done:])
	return b.String()
}

// matchAt returns the end of a spelling of key that starts at text[i], or
// -1. A backslash or a percent sign may be a character of key or start an
// escape of one, so every reading is tried; the branching is bounded by the
// backslashes and percent signs in key itself.
func matchAt(text string, i int, key []rune) int {
	if len(key) == 0 {
		return i
	}
	for r, size := range readings(text[i:]) {
		if sameLetter(r, key[0]) {
			if end := matchAt(text, i+size, key[1:]); end >= 0 {
				return end
			}
		}
	}
	return -1
}

// readings yields each character that text may start with, and how many
// bytes it takes: the character as it is, and, where text starts with an
// escape, the character it stands for. An escape is a \uXXXX escape (with
// its low surrogate, for a high one), a one-letter JSON escape, or %XX
// escapes of the UTF-8 bytes of one character. An escape may itself be
// escaped, as when JSON text is a string in JSON: any run of backslashes may
// start it, and %25 (a percent sign) may stand for its '%'.
func readings(text string) iter.Seq2[rune, int] {
	return func(yield func(rune, int) bool) {
		if text == "" {
			return
		}
		if r, size := utf8.DecodeRuneInString(text); !(r == utf8.RuneError && size == 1) {
			if !yield(r, size) {
				return
			}
		}
		switch text[0] {
		case '\\':
			backslashed(text, yield)
		case '%':
			for r, size := range percentRune(text) {
				if !yield(r, size) {
					return
				}
			}
		}
	}
}

// maxRun bounds the backslashes that may start one escape, and the %25 that
// may stand for one '%': escapes nested four deep, more than any echo holds.
// Without a bound, a body of backslashes would take time quadratic in its
// length, as each of them would be read to the end of the run.
const maxRun = 16

// backslashed yields the readings of text that start with a backslash.
func backslashed(text string, yield func(rune, int) bool) {
	n := 1
	for n < len(text) && n < maxRun && text[n] == '\\' {
		n++
	}
	rest := text[n:]
	if r, ok := hexAfter(rest, "u", 4); ok {
		size := n + 5
		if utf16.IsSurrogate(r) && strings.HasPrefix(text[size:], text[:n]+"u") {
			if low, ok := hexAfter(text[size+n:], "u", 4); ok {
				if pair := utf16.DecodeRune(r, low); pair != unicode.ReplacementChar {
					r, size = pair, 2*size
				}
			}
		}
		if !yield(r, size) {
			return
		}
	}
	if rest != "" {
		if i := strings.IndexByte(`"/bfnrt`, rest[0]); i >= 0 {
			if !yield(rune("\"/\b\f\n\r\t"[i]), n+1) {
				return
			}
		}
	}
	if n >= 2 {
		yield('\\', 2)
	}
}

// percentRune yields the characters text may start with as %XX escapes:
// its first byte in each reading of percentByte, the bytes after it of a
// multi-byte character in the longest.
func percentRune(text string) iter.Seq2[rune, int] {
	return func(yield func(rune, int) bool) {
		for b, width := range percentByte(text) {
			if b < utf8.RuneSelf {
				if !yield(rune(b), width) {
					return
				}
				continue
			}
			buf := []byte{b}
			size := width
			for len(buf) < utf8.UTFMax && !utf8.FullRune(buf) {
				var next byte
				w := 0
				for c, cw := range percentByte(text[size:]) {
					next, w = c, cw
				}
				if w == 0 {
					break
				}
				buf = append(buf, next)
				size += w
			}
			if r, n := utf8.DecodeRune(buf); n == len(buf) && !(r == utf8.RuneError && n == 1) {
				if !yield(r, size) {
					return
				}
			}
		}
	}
}

// percentByte yields the bytes text may start with as a %XX escape, whose
// '%' may be written %25 any number of times, with their widths, shortest
// first.
func percentByte(text string) iter.Seq2[byte, int] {
	return func(yield func(byte, int) bool) {
		if !strings.HasPrefix(text, "%") {
			return
		}
		for i := 1; i < 2*maxRun; i += 2 {
			r, ok := hexAfter(text[i:], "", 2)
			if !ok || !yield(byte(r), i+2) || !strings.HasPrefix(text[i:], "25") {
				return
			}
		}
	}
}

// hexAfter reads n hex digits after prefix at the start of s.
func hexAfter(s, prefix string, n int) (rune, bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return 0, false
	}
	return hex(rest, n)
}

// hex reads n hex digits at the start of s.
func hex(s string, n int) (rune, bool) {
	if len(s) < n {
		return 0, false
	}
	// Base 16 takes hex digits only: no sign, prefix or underscore.
	v, err := strconv.ParseUint(s[:n], 16, 32)
	return rune(v), err == nil
}

// sameLetter reports whether a and b are one character up to case, as
// strings.EqualFold compares them.
func sameLetter(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}
