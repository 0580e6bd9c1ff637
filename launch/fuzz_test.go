package launch_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
)

// FuzzParse checks that Parse never panics, that what it accepts is valid
// (valid UTF-8 throughout, no text repaired to U+FFFD on the way), reads as
// encoding/json reads it and survives a round trip through its canonical
// body, and that what it rejects comes with at least one field error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		sample,
		sampleBody,
		`{"id":"a-1","launch":{"optin_description":"a","trigger_description":"b","interactions_description":"c",` +
			`"optout_description":"d","agent_access_instructions":"e","agent_no":"1"}}`,
		`{"launch":{"optin_desription":"a","agent_no":5,"video_uris":["ftp://x",1]},"regions":[null,{"region":""}]}`,
		`{"launch":{"agent_no":"1","agent_no":"2"},"launch":null}`,
		`{"launch":{"optin_description":"\u2028<&>\u0001","trigger_description":"b","interactions_description":"c",` +
			`"optout_description":"d","agent_access_instructions":"e","agent_no":"1","launch_type":"0042"}}`,
		"{\"launch\":{\"optin_description\":\"\xff\"}}",
		// Text encoding/json would repair to U+FFFD, in a job otherwise
		// valid, and text that only looks like it.
		`{"launch":{"optin_description":"a\ud800","trigger_description":"b","interactions_description":"c",` +
			`"optout_description":"d","agent_access_instructions":"e","agent_no":"1"}}`,
		"{\"launch\":{\"optin_description\":\"a\",\"trigger_description\":\"b\",\"interactions_description\":\"c\"," +
			"\"optout_description\":\"d\",\"agent_access_instructions\":\"e\",\"agent_no\":\"1\xc3\"},\"regions\":[{\"region\":\"\xed\xa0\x80\"}]}",
		`{"id":"x","launch":{"optin_description":"\ufffd \ud83d\ude00 \\ud800","trigger_description":"b\udc00\ud83d",` +
			`"interactions_description":"c","optout_description":"d","agent_access_instructions":"e","agent_no":"1",` +
			`"video_uris":["https://example.com/\ud83d"]}}`,
		// Control characters: allowed (\n, \t) in descriptions only.
		`{"launch":{"optin_description":"a\n\tb","trigger_description":"b\r\n","interactions_description":"c\u0085",` +
			`"optout_description":"d","agent_access_instructions":"e","agent_no":"1\u001b[2J","launch_name":"x\t"}}`,
		// A priority of the job's own, valid or not.
		`{"sid":"HX_1","priority":"high","launch":{"optin_description":"a","trigger_description":"b",` +
			`"interactions_description":"c","optout_description":"d","agent_access_instructions":"e","agent_no":"1"}}`,
		`{"priority":"HIGH","launch":{"agent_no":"1"}}`, `{"priority":null,"launch":{}}`, `{"priority":["low"],"launch":{}}`,
		`{}`, `null`, `[]`, `{"launch":{}} {}`, `{"launch":`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := launch.Parse(data)
		if err != nil {
			var ve *launch.ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("Parse error %v (%T) is not a *ValidationError with field errors", err, err)
			}
			for _, fe := range ve.Errors {
				if fe.Reason == "" {
					t.Fatalf("field error %q without a reason", fe.Field)
				}
			}
			return
		}
		if err := j.Validate(); err != nil {
			t.Fatalf("Parse accepted a job that Validate rejects: %v", err)
		}
		if !utf8.Valid(data) {
			t.Fatalf("Parse accepted invalid UTF-8: %q", data)
		}
		if problem := launchtest.CheckText(j, data); problem != "" {
			t.Fatalf("Parse accepted %q: %s", data, problem)
		}
		if j.Launch.LaunchType == "" {
			t.Fatal("Parse did not apply the default launch_type")
		}
		// What Parse accepts (no repeated or unknown fields) encoding/json
		// reads the same: Parse's own scanner agrees with it.
		var std launch.Job
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("Parse accepted what encoding/json rejects: %v", err)
		}
		std.ApplyDefaults()
		if std.ID != j.ID || std.Priority != j.Priority || !bytes.Equal(std.Body(), j.Body()) {
			t.Fatalf("Parse read %+v, encoding/json %+v", j, std)
		}
		body := j.Body()
		if !json.Valid(body) {
			t.Fatalf("Body is not JSON: %q", body)
		}
		again, err := launch.Parse(body)
		if err != nil {
			t.Fatalf("Parse(Body()) = %v\nbody: %q", err, body)
		}
		if b := again.Body(); !bytes.Equal(b, body) {
			t.Fatalf("round trip changed the body:\n%q\n%q", body, b)
		}

		// The job with its ID, as a JSONL export writes it, reads back too.
		var line bytes.Buffer
		enc := json.NewEncoder(&line)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(j); err != nil {
			t.Fatal(err)
		}
		withID, err := launch.Parse(line.Bytes())
		if err != nil {
			t.Fatalf("Parse of the job with its ID = %v\nline: %q", err, line.Bytes())
		}
		if withID.ID != j.ID || withID.Priority != j.Priority || !bytes.Equal(withID.Body(), body) {
			t.Fatalf("job with its ID read back as %+v, want %+v", withID, j)
		}
	})
}
