package queue

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"github.com/rcslaunch/rcslaunch/launch"
)

// The tests in this file hold DecodePayload to json.Unmarshal, which
// decoded launch tasks before it: the same Payload, and an error when and
// only when json.Unmarshal has one.

// unmarshal is json.Unmarshal into a Payload, as the worker did it.
func unmarshal(b []byte) (Payload, error) {
	var p Payload
	err := json.Unmarshal(b, &p)
	return p, err
}

// fast reports whether DecodePayload takes its fast path for b.
func fast(b []byte) bool {
	_, ok := decodePayload(b)
	return ok
}

// checkDecode fails t unless DecodePayload(b) is what json.Unmarshal makes
// of b.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	got, gerr := DecodePayload(b)
	want, werr := unmarshal(b)
	if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodePayload(%q) =\n%#v, %v\nwant, as json.Unmarshal,\n%#v, %v", b, got, gerr, want, werr)
	}
}

// sampleJob is the sample of Kaleyra's documentation, with an ID.
var sampleJob = launch.Job{
	ID: "4b8f3c1e9a2d4e6f8a0b1c2d3e4f5a6b",
	Launch: launch.Launch{
		AgentAccessInstructions: "This is a demo account", AgentNo: "48900", InteractionsDescription: "Demo Messages",
		LaunchName: "launch_48900", LaunchType: "1", OptinDescription: "Bigbasket Optin", OptoutDescription: "Stop",
		ProviderLaunchID: "launch_001_google_rcs", ScreenshotURIs: []string{"https://www.example.com/uris"},
		TriggerDescription: "START", VideoURIs: []string{"https://www.example.com/videos"},
	},
	Regions: []launch.Region{{Region: "4f4bf2b0-5110-44e1-9aa1-43392c7d3b17", RegionID: "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8"}},
}

// taskPayloads are payloads as NewTask writes them, of jobs typical and
// odd: every field set, text to escape (HTML, quotes, controls, U+2028,
// invalid UTF-8), empty and many list items, each priority.
func taskPayloads(t testing.TB) map[string][]byte {
	t.Helper()
	escapes := sampleJob
	escapes.Launch.OptinDescription = "Reply \"START\" <here> & get:\n\t– offers\n\t– updates\u2028(stop any time)"
	escapes.Launch.VideoURIs = []string{"https://example.com/v?a=1&b=2", "\x01\x7f\\", "bad \xff utf8", ""}
	odd := launch.Job{ID: "id \u2029 \xed\xa0\x80", SID: "SID2", Priority: launch.PriorityLow,
		Launch:  launch.Launch{ScreenshotURIs: []string{}, VideoURIs: make([]string, 3)},
		Regions: []launch.Region{{}, {Region: "r"}, {RegionID: "<id>"}}}
	out := map[string][]byte{}
	for name, p := range map[string]Payload{
		"sample":  {SID: "SID1", Job: sampleJob},
		"high":    {SID: "SID1", Priority: PriorityHigh, Job: sampleJob},
		"default": {Priority: PriorityDefault, Job: launch.Job{ID: "j"}},
		"escapes": {SID: "SID1 <&>", Priority: PriorityLow, Job: escapes},
		"odd":     {SID: "\x00", Priority: "?", Job: odd},
		"empty":   {},
	} {
		task, err := NewTask(Name, p)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = task.Payload()
	}
	return out
}

func TestDecodePayloadFastPath(t *testing.T) {
	for name, b := range taskPayloads(t) {
		if !fast(b) {
			t.Errorf("%s: NewTask's payload %s is left to json.Unmarshal", name, b)
		}
		checkDecode(t, b)
	}
	for _, s := range []string{
		` { "job" : { "launch" : { "video_uris" : [ ] , "screenshot_uris" : [ "a" , "\u0061" ] } , "regions" : [ ] } } `,
		`{"job":{"id":"\ud83d\ude00 \ud800 \"x\"","regions":[{}]},"priority":"","sid":""}`,
		"{\"job\":{\"id\":\"bad \xff utf8\"}}",
		`{"job":{"id":"a\/b \u00e9 \n \"q\" \\","launch":{"agent_no":"\u0034\u0038"}}}`,
		"\r\n\t {\r\n\t\"sid\"\r\n\t:\r\n\t\"s\"\r\n\t,\"job\":{\"launch\":{},\"regions\":[{},{}]}}\r\n\t ",
		`{}`,
	} {
		if !fast([]byte(s)) {
			t.Errorf("%s is left to json.Unmarshal", s)
		}
		checkDecode(t, []byte(s))
	}
}

// fallbacks are payloads DecodePayload must leave to json.Unmarshal: names
// it matches without regard to case (Unicode's included) or escaped,
// repeated names (a repeated object is merged), unknown names, null and
// values of other types, text that is not a JSON object, and text that is
// not JSON at all (which the fast path must tell by itself).
var fallbacks = []string{
	`{"SID":"s","job":{"id":"a"}}`, `{"sid":"s","Job":{"ID":"a","Launch":{"Agent_No":"1"}}}`,
	`{"job":{"id":"a","regions":[{"REGION":"r","Region_ID":"i"}]}}`, "{\"\u017fid\":\"s\",\"job\":{\"id\":\"a\"}}",
	`{"job":{"id":"a","launch":{"agent_\u212a":"k"}}}`, `{"\u0073id":"s","job":{"id":"a"}}`,
	`{"sid":"a","sid":"b","job":{"id":"a"}}`, `{"job":{"id":"a"},"job":{"sid":"b"}}`,
	`{"job":{"id":"a","launch":{"agent_no":"1"},"launch":{"launch_type":"2"}}}`,
	`{"job":{"id":"a","regions":[{"region":"r","region":"s"}]}}`, `{"job":{"id":"a","id":"b"}}`,
	`{"x":1,"sid":"s","job":{"id":"a"}}`, `{"job":{"id":"a","extra":[1,{"b":null}]}}`, `{"":"x","job":{"id":"a"}}`,
	`{"job":{"id":"a","launch":{"agent_no":"1","note":"n"}}}`, `{"job":{"id":"a","regions":[{"region":"r","x":0}]}}`,
	`{"sid":null,"job":{"id":"a"}}`, `{"job":null}`, `{"job":{"id":"a","launch":null}}`,
	`{"job":{"id":"a","regions":null}}`, `{"job":{"id":"a","regions":[null]}}`,
	`{"job":{"id":"a","launch":{"video_uris":null}}}`, `{"job":{"id":"a","launch":{"video_uris":["v",null]}}}`,
	`{"sid":1,"job":{"id":"a"}}`, `{"sid":true,"job":{"id":"a"}}`, `{"priority":["high"],"job":{"id":"a"}}`,
	`{"job":{"id":{"x":"a"}}}`, `{"job":"a"}`, `{"job":[]}`, `{"job":{"id":"a","regions":{"region":"r"}}}`,
	`{"job":{"id":"a","regions":["r"]}}`, `{"job":{"id":"a","launch":{"screenshot_uris":"s"}}}`,
	`{"job":{"id":"a","launch":{"screenshot_uris":[1]}}}`, `{"job":{"id":"a","launch":{"agent_no":48900}}}`,
	`{"job":{"id":"a"}} x`, `{"job":{"id":"a"}`, `{"job":{"id":"a",}}`,
	`null`, `[]`, `"job"`, `1`, ``, ` `, `{`, `{"job":{"id":"a\`,
	// Not JSON.
	`{"sid" "s","job":{"id":"a"}}`, `{"sid"="s","job":{"id":"a"}}`, `{"sid"::"s","job":{"id":"a"}}`,
	`{"sid":"s" "job":{"id":"a"}}`, `{"job":{"id":"a","launch":{"video_uris":["a" "b"]}}}`,
	`{"sid":"s",}`, `{"job":{"id":"a","launch":{"video_uris":["a",]}}}`, `{,"sid":"s"}`,
	`{"job":{"id":"a","launch":{"video_uris":[,"a"]}}}`, `{"sid":"s",,"job":{"id":"a"}}`, `{"job":{"id":"a"};}`,
	"{\"job\":{\"id\":\"a\tb\"}}", "{\"job\":{\"id\":\"a\x00b\"}}", "{\"job\":{\"id\":\"a\nb\"}}",
	"{\"job\":{\"id\":\"a\x1f\\n\"}}", `{"job":{"id":"a\xb"}}`, `{"job":{"id":"\u12"}}`, `{"job":{"id":"\u12G4"}}`,
	`{"job":{"id":"a\'"}}`, `{"job":{"id":"a\`, `{"job":{"id":"a\"}}`, `{"job":{"id":"a}}`, `{"job":{"id":"`,
	`{"job":{"id":"a"]}`, `{"job":{"id":"a","launch":{"video_uris":["a"}}}}`, `{"job":{"id":"a","regions":[{"region":"r"]}}`,
	`{"job":{"id":"a"}}}`, `{"job":{"id":"a"}}{}`, `{"job":{"id":"a"}},`, `{"job":{"id":"a"}}"`,
	"\xef\xbb\xbf{\"job\":{\"id\":\"a\"}}", "{\"sid\":\f\"s\",\"job\":{\"id\":\"a\"}}",
	"{\"sid\":\v\"s\",\"job\":{\"id\":\"a\"}}", "{\"sid\":\u00a0\"s\",\"job\":{\"id\":\"a\"}}",
	`{'sid':'s','job':{'id':'a'}}`, `{sid:"s",job:{id:"a"}}`, `{"sid":"s"`, `{"sid"`, `{"sid":`,
}

func TestDecodePayloadFallback(t *testing.T) {
	for _, s := range fallbacks {
		if fast([]byte(s)) {
			t.Errorf("%s takes the fast path", s)
		}
		checkDecode(t, []byte(s))
	}
}

// FuzzDecodePayloadMatchesUnmarshal checks DecodePayload against
// json.Unmarshal on any text, and that its fast path takes no text that is
// not JSON.
func FuzzDecodePayloadMatchesUnmarshal(f *testing.F) {
	for _, b := range taskPayloads(f) {
		f.Add(b)
	}
	for _, s := range fallbacks {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// No room past the end, where a decoder that overran would read
		// without a panic.
		b = b[:len(b):len(b)]
		checkDecode(t, b)
		if fast(b) && !json.Valid(b) {
			t.Fatalf("DecodePayload(%q) takes the fast path, but json.Valid refuses it", b)
		}
	})
}

// FuzzDecodePayloadFastPath checks that DecodePayload's fast path takes
// whatever NewTask writes, with any text in every field of a job, and
// decodes it as json.Unmarshal does.
func FuzzDecodePayloadFastPath(f *testing.F) {
	for _, s := range []string{"", "plain", "<b>Tom & Jerry</b>", `"quoted" \ back / slash`, "\x00\x01\x1f\x7f\b\f\n\r\t",
		"\u2028\u2029 é 😀", "bad \xff utf8 \xed\xa0\x80 cut \xe2\x80", `"sid":"x"`, "\\u0041"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		task, err := NewTask(Name, Payload{SID: s, Priority: Priority(s), Job: launch.Job{ID: s, SID: s, Priority: Priority(s),
			Launch: launch.Launch{AgentAccessInstructions: s, AgentNo: s, InteractionsDescription: s, LaunchName: s,
				LaunchType: s, OptinDescription: s, OptoutDescription: s, ProviderLaunchID: s, ScreenshotURIs: []string{s, s},
				TriggerDescription: s, VideoURIs: []string{s}},
			Regions: []launch.Region{{Region: s, RegionID: s}, {Region: s}}}})
		if err != nil {
			t.Fatal(err)
		}
		if !fast(task.Payload()) {
			t.Fatalf("NewTask's payload %q is left to json.Unmarshal", task.Payload())
		}
		checkDecode(t, task.Payload())
	})
}

// BenchmarkDecodePayload compares DecodePayload with json.Unmarshal, which
// the worker called before, on NewTask's payloads: the sample job with every
// string made its own by the job's number (as no two jobs are alike, at the
// worst for json.Unmarshal's cache of the strings it made last), the same
// for the sample with text to escape, and the sample itself, payload after
// payload (at the best for that cache).
func BenchmarkDecodePayload(b *testing.B) {
	escapes := taskPayloads(b)["escapes"]
	var p Payload
	if err := json.Unmarshal(escapes, &p); err != nil {
		b.Fatal(err)
	}
	jobs := func(base launch.Job) [][]byte {
		out := make([][]byte, 1024)
		for i := range out {
			j := base
			var fill func(v reflect.Value)
			fill = func(v reflect.Value) {
				switch v.Kind() {
				case reflect.String:
					v.SetString(v.String() + " " + strconv.Itoa(i))
				case reflect.Slice:
					v.Set(reflect.AppendSlice(reflect.MakeSlice(v.Type(), 0, v.Len()), v))
					for k := range v.Len() {
						fill(v.Index(k))
					}
				case reflect.Struct:
					for k := range v.NumField() {
						fill(v.Field(k))
					}
				}
			}
			fill(reflect.ValueOf(&j).Elem())
			task, err := NewTask(Name, Payload{SID: "SID1", Job: j})
			if err != nil {
				b.Fatal(err)
			}
			out[i] = task.Payload()
		}
		return out
	}
	for _, c := range []struct {
		name     string
		payloads [][]byte
	}{
		{"distinct", jobs(sampleJob)},
		{"escapes", jobs(p.Job)},
		{"repeated", [][]byte{taskPayloads(b)["sample"]}},
	} {
		for _, f := range []struct {
			name   string
			decode func([]byte) (Payload, error)
		}{{"old", unmarshal}, {"new", DecodePayload}} {
			b.Run(c.name+"/"+f.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := f.decode(c.payloads[i%len(c.payloads)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}
