package sim

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParsePayload: any body is either bad JSON (RCS701, with the decoder's
// own message), not an object (RCS701), or an object checked field by field;
// a body that passes has every required field as a non-empty string.
func FuzzParsePayload(f *testing.F) {
	f.Add(body("+15550001111"))
	f.Add([]byte(`{"launch":{"agent_no":"1"}}`))
	f.Add([]byte(`{"launch":{},"regions":[{"region":""}]}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"launch":`))
	f.Add([]byte(``))
	f.Add([]byte(`null`))
	// Valid JSON that a decoder into any refuses (beyond float64): a
	// request, not an RCS701.
	f.Add([]byte(`1e400`))
	f.Add([]byte(`{"launch":{},"x":1e400}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := parsePayload(b)
		valid := json.Valid(b)
		isObject := valid && bytes.TrimLeft(b, " \t\r\n")[0] == '{'
		if p.validJSON != valid {
			t.Fatalf("%q: validJSON %v, json.Valid %v", b, p.validJSON, valid)
		}
		switch {
		case !valid:
			var v any
			if err := json.Unmarshal(b, &v); err == nil || p.jsonProblem != err.Error() {
				t.Fatalf("bad JSON %q: jsonProblem %q, want the decoder's error %v", b, p.jsonProblem, err)
			}
		case !isObject:
			if p.jsonProblem != "request body must be a JSON object" {
				t.Fatalf("JSON %q that is no object: jsonProblem %q", b, p.jsonProblem)
			}
		case p.jsonProblem != "":
			t.Fatalf("JSON object %q: jsonProblem %q", b, p.jsonProblem)
		case p.problem == "":
			for _, name := range requiredFields {
				var s string
				if json.Unmarshal(p.launch[name], &s) != nil || strings.TrimSpace(s) == "" {
					t.Fatalf("%q passed without launch.%s", b, name)
				}
			}
		}
	})
}

// BenchmarkParsePayload decodes a valid launch body, as every call does.
func BenchmarkParsePayload(b *testing.B) {
	body := body("+15550001111")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if p := parsePayload(body); p.jsonProblem != "" || p.problem != "" {
			b.Fatal(p.jsonProblem, p.problem)
		}
	}
}
