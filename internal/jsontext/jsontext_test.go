package jsontext

import (
	"encoding/json"
	"testing"
)

// FuzzString checks that String agrees with encoding/json on any input; its
// seeds (run by every `go test`) are strings plain and escaped, invalid
// UTF-8, control characters, other values and broken text.
func FuzzString(f *testing.F) {
	for _, s := range []string{
		`"plain"`, `""`, ` "spaced"`, `"a" `, `"tab\tescaped"`, `"\u00e9 \u2028 é 😀"`, `"quote \" inside"`,
		"\"bad \xff utf8\"", "\"control \x01\"", `"unterminated`, `"`, `"a"x`, `123`, `null`, `{"a":1}`, ``, `["x"]`,
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
	})
}
