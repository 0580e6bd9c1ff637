// Package jsontext reads small pieces of JSON text without encoding/json
// where that is the costly part of a hot path: strict job parsing in bulk
// enqueue, and reading Kaleyra's answers in the worker.
package jsontext

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// String returns the text of raw if raw is a JSON string, as encoding/json
// would decode it (escapes resolved, invalid UTF-8 replaced); ok is false for
// any other value. A string with nothing to resolve, the usual case, is
// taken as it is.
func String(raw []byte) (string, bool) {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	n := len(raw)
	if n == 0 || raw[0] != '"' {
		return "", false
	}
	if n >= 2 && raw[n-1] == '"' && plain(raw[1:n-1]) {
		return string(raw[1 : n-1]), true
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

// plain reports whether the inside of a quoted string needs no decoding:
// no escape, no quote or control character, valid UTF-8.
func plain(inner []byte) bool {
	for _, c := range inner {
		if c < ' ' || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.Valid(inner)
}
