// Package jsontext reads and writes small pieces of JSON text without
// encoding/json where that is the costly part of a hot path: strict job
// parsing in bulk enqueue, a launch task's payload, a launch's body and
// Kaleyra's answers in the worker, the attempt log entries of the store, and
// the simulator's reading of a launch.
package jsontext

import (
	"encoding/json"
	"iter"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// String returns the text of raw if raw is a JSON string, as encoding/json
// would decode it (escapes resolved, invalid UTF-8 replaced); ok is false for
// any other value. A string with nothing to resolve, the usual case, is
// taken as it is, and one whose only trouble is escapes (such as the
// \u0026 of every '&' json.Marshal writes) resolved here.
func String(raw []byte) (string, bool) {
	raw = raw[SkipSpace(raw, 0):]
	n := len(raw)
	if n == 0 || raw[0] != '"' {
		return "", false
	}
	if n >= 2 && raw[n-1] == '"' {
		inner := raw[1 : n-1]
		if Plain(inner) {
			return string(inner), true
		}
		if s, ok := unescape(inner); ok {
			return s, true
		}
	}
	return unquote(raw)
}

// unquote is String by encoding/json; apart, so that the fast path does not
// pay for a string that escapes to the heap.
func unquote(raw []byte) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// unescape returns the text of the JSON string whose inside is inner, its
// escapes resolved. ok is false, and String leaves the string to
// encoding/json, unless inner is valid UTF-8 without a quote or control
// character and each of its escapes is valid and a character by itself (not
// half a UTF-16 surrogate pair): then what encoding/json makes of the text
// is simply what it says.
func unescape(inner []byte) (string, bool) {
	if !utf8.Valid(inner) {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(inner))
	start := 0 // inner[start:i] is yet to be written, as it is
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if c < ' ' || c == '"' {
			return "", false
		}
		if c != '\\' {
			continue
		}
		b.Write(inner[start:i])
		if i++; i == len(inner) {
			return "", false
		}
		switch c := inner[i]; c {
		case '"', '\\', '/':
			b.WriteByte(c)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(inner[i+1:])
			if !ok || utf16.IsSurrogate(r) {
				return "", false
			}
			b.WriteRune(r)
			i += 4
		default:
			return "", false
		}
		start = i + 1
	}
	b.Write(inner[start:])
	return b.String(), true
}

// Plain reports whether inner, the inside of a quoted string, needs no
// decoding: no escape, no quote or control character, valid UTF-8. Such a
// string is valid JSON, and its text is inner as it is.
func Plain(inner []byte) bool {
	for _, c := range inner {
		if c < ' ' || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.Valid(inner)
}

// StringEnd returns the index just after the JSON string that starts with
// the quote at data[i], or len(data) when it is not closed. It only looks
// for the closing quote, skipping escaped characters: it is for text that
// json.Valid has accepted, where that is all it takes.
func StringEnd(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	// A backslash at the end has taken i one past it.
	return min(i, len(data))
}

// Exact reports whether String decodes the JSON string raw without loss:
// invalid UTF-8 and a \u escape of half a UTF-16 surrogate pair (such as a
// lone \ud800) are silently decoded as U+FFFD, so that the text would no
// longer be what its author wrote. It is meant for valid JSON strings; on
// anything else its answer means nothing.
func Exact(raw []byte) bool {
	if !utf8.Valid(raw) {
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++
		if i == len(raw) || raw[i] != 'u' {
			continue // a one-letter escape, skipped whole
		}
		r, ok := hex4(raw[i+1:])
		if !ok {
			return false
		}
		i += 4
		if !utf16.IsSurrogate(r) {
			continue
		}
		// A high surrogate must be followed at once by a low one.
		if r >= 0xdc00 || i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
			return false
		}
		low, ok := hex4(raw[i+3:])
		if !ok || low < 0xdc00 || low > 0xdfff {
			return false
		}
		i += 6
	}
	return true
}

// hex4 reads the four hex digits of a \u escape at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	// Base 16 takes hex digits only: no sign, prefix or underscore.
	v, err := strconv.ParseUint(string(b[:4]), 16, 16)
	return rune(v), err == nil
}

// The scanners below split JSON text that json.Valid has accepted: on valid
// input they only have to find where each value ends, at a fraction of the
// cost of decoding it through encoding/json. On other text they do not
// fail, but what they find means nothing.

// SkipSpace returns the index of the first byte at or after data[i] that
// is not JSON white space.
func SkipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// Kind returns the first byte of the JSON value v: '{' for an object, '['
// for an array, '"' for a string, 'n' for null, and so on; 0 when v is
// empty.
func Kind(v []byte) byte {
	if i := SkipSpace(v, 0); i < len(v) {
		return v[i]
	}
	return 0
}

// IsNull reports whether the JSON value v is null.
func IsNull(v []byte) bool { return Kind(v) == 'n' }

// ValueEnd returns the index just after the JSON value that starts at
// data[i], or i when none does.
func ValueEnd(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return StringEnd(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = StringEnd(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // a number, true, false or null
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}

// Members yields the name, still quoted, and the value of each member of
// the JSON object obj, in order; nothing when obj is not an object.
func Members(obj []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		i := SkipSpace(obj, 0)
		if i == len(obj) || obj[i] != '{' {
			return
		}
		for i = SkipSpace(obj, i+1); i < len(obj) && obj[i] == '"'; {
			end := StringEnd(obj, i)
			name := obj[i:end]
			i = SkipSpace(obj, end)
			if i < len(obj) && obj[i] == ':' {
				i = SkipSpace(obj, i+1)
			}
			end = ValueEnd(obj, i)
			if end == i || !yield(name, obj[i:end]) {
				return
			}
			if i = SkipSpace(obj, end); i < len(obj) && obj[i] == ',' {
				i = SkipSpace(obj, i+1)
			}
		}
	}
}

// Items yields each item of the JSON array arr, in order; nothing when arr
// is not an array.
func Items(arr []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		i := SkipSpace(arr, 0)
		if i == len(arr) || arr[i] != '[' {
			return
		}
		for i = SkipSpace(arr, i+1); i < len(arr) && arr[i] != ']'; {
			end := ValueEnd(arr, i)
			if end == i || !yield(arr[i:end]) {
				return
			}
			if i = SkipSpace(arr, end); i < len(arr) && arr[i] == ',' {
				i = SkipSpace(arr, i+1)
			}
		}
	}
}

// AppendString appends s to b as a JSON string, quoted byte for byte as
// encoding/json quotes it without HTML escaping: '"', '\\' and the C0
// controls escaped (\b, \f, \n, \r, \t in short, the others as \u00XX in
// lower case), U+2028 and U+2029 escaped as \u2028 and \u2029 (which
// encoding/json does even without HTML escaping, for JSONP), each byte of
// invalid UTF-8 replaced with U+FFFD, and everything else, DEL and the C1
// controls included, as it is. The replacement is the character itself, as
// encoding/json writes it when built on encoding/json/v2 (GOEXPERIMENT=jsonv2,
// the default of the toolchain this module builds with); the older encoder
// (GOEXPERIMENT=nojsonv2) wrote the escape \ufffd instead.
func AppendString(b []byte, s string) []byte {
	return appendString(b, s, &safeASCII)
}

// AppendStringEscapeHTML is AppendString with HTML escaping, as json.Marshal
// quotes a string (and an Encoder unless told otherwise): '<', '>' and '&'
// are escaped too, as \u003c, \u003e and \u0026.
func AppendStringEscapeHTML(b []byte, s string) []byte {
	return appendString(b, s, &htmlSafeASCII)
}

// safeASCII and htmlSafeASCII are the ASCII characters that AppendString
// and AppendStringEscapeHTML write as they are.
var (
	safeASCII     = asciiSafe("")
	htmlSafeASCII = asciiSafe("<>&")
)

// asciiSafe is the set of the ASCII characters a JSON string may hold as
// they are, but for those of escaped.
func asciiSafe(escaped string) (set [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		set[c] = c != '"' && c != '\\' && !strings.ContainsRune(escaped, c)
	}
	return set
}

// appendString is AppendString, writing the ASCII characters of safe as
// they are and escaping the others.
func appendString(b []byte, s string, safe *[utf8.RuneSelf]bool) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0 // s[start:i] is yet to be appended, as it is
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = utf8.AppendRune(b, utf8.RuneError)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
