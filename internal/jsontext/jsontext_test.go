package jsontext

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// FuzzString checks that String agrees with encoding/json on any input, and
// Exact with exact on every JSON string; its seeds (run by every `go test`)
// are strings plain and escaped, invalid UTF-8, surrogate escapes paired and
// not, control characters, other values and broken text.
func FuzzString(f *testing.F) {
	for _, s := range []string{
		`"plain"`, `""`, ` "spaced"`, `"a" `, `"tab\tescaped"`, `"\u00e9 \u2028 é 😀"`, `"quote \" inside"`,
		"\"bad \xff utf8\"", "\"control \x01\"",
		`"\ud83d\ude00"`, `"\ud83d"`, `"\ude00\ud83d"`, `"\ud83dx\ude00"`, `"\ud83d\u0041"`, `"\\ud800"`, `"\ufffd\uFFFD"`, `"unterminated`, `"`, `"a"x`, `123`, `null`, `{"a":1}`, ``, `["x"]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := String(raw)
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			if ok {
				t.Fatalf("String(%q) = %q, true; encoding/json: %v", raw, got, err)
			}
			return
		}
		want, isString := v.(string)
		if ok != isString || got != want {
			t.Fatalf("String(%q) = %q, %v; encoding/json: %q, %v", raw, got, ok, want, isString)
		}
		if isString {
			if e, w := Exact(raw), exact(raw); e != w {
				t.Fatalf("Exact(%q) = %v, want %v", raw, e, w)
			}
		}
	})
}

// exact is Exact done another way, for FuzzString: raw, a valid JSON string,
// is exact when its bytes are valid UTF-8 and each run of \u escapes is
// valid UTF-16, which utf16.Decode shows by making no U+FFFD of its own.
func exact(raw []byte) bool {
	if !utf8.Valid(raw) {
		return false
	}
	var units []uint16
	flush := func() bool {
		explicit := 0
		for _, u := range units {
			if u == utf8.RuneError {
				explicit++
			}
		}
		made := 0
		for _, r := range utf16.Decode(units) {
			if r == utf8.RuneError {
				made++
			}
		}
		units = units[:0]
		return made == explicit
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && raw[i+1] == 'u' {
			u, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
			if err != nil {
				return false
			}
			units = append(units, uint16(u))
			i += 5
			continue
		}
		if !flush() {
			return false
		}
		if raw[i] == '\\' {
			i++
		}
	}
	return flush()
}

func TestExact(t *testing.T) {
	for raw, want := range map[string]bool{
		`"plain"`: true, `"é 😀"`: true, `"\u00e9"`: true, `"\ud83d\ude00"`: true, `"\uD83D\uDE00"`: true,
		`"\ufffd"`: true, "\"\ufffd\"": true, `"\\ud800"`: true, `"\\\ud83d\ude00"`: true,
		"\"a\xffb\"": false, "\"\xed\xa0\x80\"": false, `"\ud800"`: false, `"\udc00"`: false,
		`"\ude00\ud83d"`: false, `"\ud83dx\ude00"`: false, `"\ud83d\u0041"`: false, `"\ud83d\ud83d"`: false,
		`"x\ud83d"`: false,
	} {
		if got := Exact([]byte(raw)); got != want {
			t.Errorf("Exact(%s) = %v, want %v", raw, got, want)
		}
		if got := exact([]byte(raw)); got != want {
			t.Errorf("exact(%s) = %v, want %v", raw, got, want)
		}
	}
}

// FuzzScanners checks Kind, ValueEnd, Members and Items against
// encoding/json on valid JSON: the members of an object (the last of a
// repeated name counting, as Unmarshal into a map takes them) and the items
// of an array, each value byte for byte.
func FuzzScanners(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, ` { "a" : 1 , "b":[1,{"c":"}"}] } `, `{"a":1,"a":2}`, `{"\u0061":"x","A":null}`,
		`["x", {"y":[]}, 1e5, -0.5, true, false, null, "\"]"]`, `{"s":"\\"}`, `"str"`, `12`, `null`, "\t[\n]\r",
		`{"deep":[[[[{"k":"v"}]]]]}`, `not json`, `{"a":`, `{"\`, `["\`, `{"a":"\`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// No room past the end, where a scanner that overran would read
		// without a panic.
		data = data[:len(data):len(data)]
		if !json.Valid(data) {
			// Not their input: they must still return, and not panic.
			for range Members(data) {
			}
			for range Items(data) {
			}
			return
		}
		start := SkipSpace(data, 0)
		if Kind(data) != data[start] {
			t.Fatalf("Kind(%q) = %q, want %q", data, Kind(data), data[start])
		}
		var v any
		if err := json.Unmarshal(data, &v); err == nil && IsNull(data) != (v == nil) {
			t.Fatalf("IsNull(%q) = %v, decoded %v", data, IsNull(data), v)
		}
		if end := ValueEnd(data, start); SkipSpace(data, end) != len(data) {
			t.Fatalf("ValueEnd(%q, %d) = %d: not the end of the value", data, start, end)
		}
		switch data[start] {
		case '{':
			var want map[string]json.RawMessage
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			got := map[string]json.RawMessage{}
			for name, value := range Members(data) {
				text, ok := String(name)
				if !ok {
					t.Fatalf("Members(%q) yielded the name %q", data, name)
				}
				got[text] = value
			}
			if len(got) != len(want) {
				t.Fatalf("Members(%q): %d names, encoding/json %d", data, len(got), len(want))
			}
			for name, w := range want {
				if g := got[name]; string(g) != string(w) {
					t.Fatalf("Members(%q)[%q] = %q, encoding/json %q", data, name, g, w)
				}
			}
		case '[':
			var want []json.RawMessage
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			var got []json.RawMessage
			for item := range Items(data) {
				got = append(got, item)
			}
			if len(got) != len(want) {
				t.Fatalf("Items(%q): %d items, encoding/json %d", data, len(got), len(want))
			}
			for i := range want {
				if string(got[i]) != string(want[i]) {
					t.Fatalf("Items(%q)[%d] = %q, encoding/json %q", data, i, got[i], want[i])
				}
			}
		}
	})
}

// FuzzAppendString checks AppendString against an Encoder with
// SetEscapeHTML(false) and AppendStringEscapeHTML against json.Marshal, byte
// for byte, on any text: valid or not, with every kind of character to
// escape.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{
		"", "plain", `"quoted" \ back`, "<script>&amp;</script>", "\x00\x01\x1f\x7f \b\f\n\r\t",
		"\u2028\u2029\u0085\u00a0", "é 😀", "bad \xff\xfe utf8", "\xed\xa0\x80", "cut \xe2\x80",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got, want := AppendString([]byte("x"), s), "x"+strings.TrimSuffix(buf.String(), "\n"); string(got) != want {
			t.Fatalf("AppendString(%q) = %q, want %q", s, got[1:], want[1:])
		}
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendStringEscapeHTML(nil, s); string(got) != string(want) {
			t.Fatalf("AppendStringEscapeHTML(%q) = %q, want %q", s, got, want)
		}
	})
}
