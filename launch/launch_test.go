package launch_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/launch"
)

// sample is the request from Kaleyra's documentation, with a real UUID in
// region_id.
const sample = `{
  "launch": {
    "optin_description": "Bigbasket Optin",
    "trigger_description": "START",
    "interactions_description": "Demo Messages",
    "optout_description": "Stop",
    "agent_access_instructions": "This is a demo account",
    "provider_launch_id": "launch_001_google_rcs",
    "launch_name": "launch_48900",
    "launch_type": "1",
    "video_uris": ["https://www.example.com/videos"],
    "screenshot_uris": ["https://www.example.com/uris"],
    "agent_no": "48900"
  },
  "regions": [
    {"region_id": "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8", "region": "4f4bf2b0-5110-44e1-9aa1-43392c7d3b17"}
  ]
}`

// sampleBody is Body() of sample: sorted keys, no white space, no id.
const sampleBody = `{"launch":{"agent_access_instructions":"This is a demo account","agent_no":"48900",` +
	`"interactions_description":"Demo Messages","launch_name":"launch_48900","launch_type":"1",` +
	`"optin_description":"Bigbasket Optin","optout_description":"Stop",` +
	`"provider_launch_id":"launch_001_google_rcs","screenshot_uris":["https://www.example.com/uris"],` +
	`"trigger_description":"START","video_uris":["https://www.example.com/videos"]},` +
	`"regions":[{"region":"4f4bf2b0-5110-44e1-9aa1-43392c7d3b17","region_id":"8346a250-d7a9-47dc-8202-a8b1c2d3e4e8"}]}`

// sampleID is DeriveID("SID1", sample), the first 32 hex digits of
// SHA-256("SID1\x00" + sampleBody), computed outside Go. It is a golden
// value: if it changes,
// every job enqueued before the change gets a new ID and re-enqueueing a file
// launches its agents again. Only change it on purpose.
const sampleID = "5f5497d52b9aab4dbef6eeba0ce91f55"

// requiredFields are the launch fields Kaleyra requires as non-empty strings
// (launch_type is required too but has a default).
var requiredFields = []string{
	"optin_description", "trigger_description", "interactions_description",
	"optout_description", "agent_access_instructions", "agent_no",
}

// sampleJob returns sample decoded as a generic map, to be changed by a test
// and encoded again with encode.
func sampleJob(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(sample), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func launchOf(m map[string]any) map[string]any { return m["launch"].(map[string]any) }

func encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withLaunch returns sample with launch.name set to value, or removed when
// value is the remove sentinel.
func withLaunch(t testing.TB, name string, value any) []byte {
	t.Helper()
	m := sampleJob(t)
	if value == remove {
		delete(launchOf(m), name)
	} else {
		launchOf(m)[name] = value
	}
	return encode(t, m)
}

// withRegions returns sample with regions set to value.
func withRegions(t testing.TB, value any) []byte {
	t.Helper()
	m := sampleJob(t)
	m["regions"] = value
	return encode(t, m)
}

type sentinel struct{}

var remove = sentinel{}

// problems returns the field errors of err, failing the test unless err is a
// *launch.ValidationError with at least one of them.
func problems(t testing.TB, err error) []launch.FieldError {
	t.Helper()
	var ve *launch.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want a *launch.ValidationError", err, err)
	}
	if len(ve.Errors) == 0 {
		t.Fatal("ValidationError without field errors")
	}
	return ve.Errors
}

// wantOnly checks that err holds exactly one problem, on field, whose reason
// contains reason.
func wantOnly(t testing.TB, err error, field, reason string) {
	t.Helper()
	errs := problems(t, err)
	if len(errs) != 1 || errs[0].Field != field || !strings.Contains(errs[0].Reason, reason) {
		t.Fatalf("problems = %q, want only %s: …%s…", errs, field, reason)
	}
}

func parseOK(t testing.TB, data []byte) launch.Job {
	t.Helper()
	j, err := launch.Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", data, err)
	}
	launch.CheckSameAsOld(t, j)
	return j
}

func TestParseSample(t *testing.T) {
	j := parseOK(t, []byte(sample))
	want := launch.Job{
		Launch: launch.Launch{
			AgentAccessInstructions: "This is a demo account",
			AgentNo:                 "48900",
			InteractionsDescription: "Demo Messages",
			LaunchName:              "launch_48900",
			LaunchType:              "1",
			OptinDescription:        "Bigbasket Optin",
			OptoutDescription:       "Stop",
			ProviderLaunchID:        "launch_001_google_rcs",
			ScreenshotURIs:          []string{"https://www.example.com/uris"},
			TriggerDescription:      "START",
			VideoURIs:               []string{"https://www.example.com/videos"},
		},
		Regions: []launch.Region{{Region: "4f4bf2b0-5110-44e1-9aa1-43392c7d3b17", RegionID: "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8"}},
	}
	if got, wantBody := j.Body(), want.Body(); !bytes.Equal(got, wantBody) || j.ID != "" {
		t.Fatalf("Parse(sample) = %+v, want %+v", j, want)
	}
	if err := j.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestParseMinimal(t *testing.T) {
	j := parseOK(t, []byte(`{"launch":{"optin_description":"a","trigger_description":"b",`+
		`"interactions_description":"c","optout_description":"d","agent_access_instructions":"e","agent_no":"1"}}`))
	if j.Launch.LaunchType != launch.DefaultLaunchType {
		t.Errorf("LaunchType = %q, want the default %q", j.Launch.LaunchType, launch.DefaultLaunchType)
	}
	if j.Regions != nil || j.Launch.VideoURIs != nil || j.Launch.ScreenshotURIs != nil {
		t.Errorf("optional lists = %v %v %v, want nil", j.Regions, j.Launch.VideoURIs, j.Launch.ScreenshotURIs)
	}
}

func TestRequiredFields(t *testing.T) {
	for _, name := range requiredFields {
		field := "launch." + name
		for _, tc := range []struct {
			desc  string
			value any
		}{
			{"absent", remove},
			{"empty", ""},
			{"blank", " \t\n"},
			{"null", nil},
		} {
			t.Run(name+"/"+tc.desc, func(t *testing.T) {
				_, err := launch.Parse(withLaunch(t, name, tc.value))
				wantOnly(t, err, field, "is required and must be a non-empty string")
			})
		}
		t.Run(name+"/number", func(t *testing.T) {
			_, err := launch.Parse(withLaunch(t, name, 42))
			wantOnly(t, err, field, "must be a string, got a number")
		})
		t.Run(name+"/too long", func(t *testing.T) {
			_, err := launch.Parse(withLaunch(t, name, strings.Repeat("x", launch.MaxTextLen+1)))
			wantOnly(t, err, field, fmt.Sprintf("must be at most %d characters, got %d", launch.MaxTextLen, launch.MaxTextLen+1))
		})
	}
}

func TestOptionalText(t *testing.T) {
	for _, name := range []string{"provider_launch_id", "launch_name"} {
		field := "launch." + name
		t.Run(name, func(t *testing.T) {
			for _, v := range []any{remove, nil, ""} {
				parseOK(t, withLaunch(t, name, v))
			}
			_, err := launch.Parse(withLaunch(t, name, "  "))
			wantOnly(t, err, field, "must not be blank when given")
			_, err = launch.Parse(withLaunch(t, name, true))
			wantOnly(t, err, field, "must be a string, got a boolean")
			_, err = launch.Parse(withLaunch(t, name, strings.Repeat("é", launch.MaxTextLen+1)))
			wantOnly(t, err, field, "must be at most")
		})
	}
}

func TestLaunchType(t *testing.T) {
	for _, tc := range []struct {
		value any
		want  string
	}{
		{remove, "1"},
		{nil, "1"},
		{"", "1"},
		{"1", "1"},
		{"2", "2"},
		{"0", "0"},
		{"9999", "9999"},
	} {
		j := parseOK(t, withLaunch(t, "launch_type", tc.value))
		if j.Launch.LaunchType != tc.want {
			t.Errorf("launch_type %#v: got %q, want %q", tc.value, j.Launch.LaunchType, tc.want)
		}
	}
	for _, bad := range []string{" ", "a", "1a", "-1", "+1", "1.0", " 1", "1 ", "12345", "١"} {
		_, err := launch.Parse(withLaunch(t, "launch_type", bad))
		wantOnly(t, err, "launch.launch_type", "must be a numeric string such as \"1\"")
	}
	_, err := launch.Parse(withLaunch(t, "launch_type", 1))
	wantOnly(t, err, "launch.launch_type", "must be a string, got a number")
}

func TestURIs(t *testing.T) {
	good := []string{
		"https://www.example.com/videos",
		"http://example.com",
		"HTTPS://EXAMPLE.COM/A?b=c#d",
		"https://user@example.com:8443/p/q.mp4",
		"https://example.com/" + strings.Repeat("a", launch.MaxURILen-len("https://example.com/")),
	}
	bad := []string{
		"",
		"ftp://example.com/a",
		"/relative/path",
		"example.com/video",
		"https://",
		"https:///path",
		"http://exa mple.com",
		"mailto:someone@example.com",
		"https://example.com/%zz",
	}
	for _, name := range []string{"video_uris", "screenshot_uris"} {
		field := "launch." + name
		t.Run(name, func(t *testing.T) {
			for _, u := range good {
				parseOK(t, withLaunch(t, name, []string{u}))
			}
			for _, u := range bad {
				_, err := launch.Parse(withLaunch(t, name, []string{good[0], u}))
				wantOnly(t, err, field+"[1]", "must be an absolute http(s) URL")
			}
			long := "https://example.com/" + strings.Repeat("a", launch.MaxURILen)
			_, err := launch.Parse(withLaunch(t, name, []string{long}))
			wantOnly(t, err, field+"[0]", fmt.Sprintf("must be at most %d bytes", launch.MaxURILen))

			for _, v := range []any{remove, nil, []string{}} {
				j := parseOK(t, withLaunch(t, name, v))
				if bytes.Contains(j.Body(), []byte(name)) {
					t.Errorf("%s = %#v: Body %s mentions it, want it left out", name, v, j.Body())
				}
			}
			_, err = launch.Parse(withLaunch(t, name, "https://example.com"))
			wantOnly(t, err, field, "must be an array of URL strings, got a string")
			_, err = launch.Parse(withLaunch(t, name, map[string]any{"uris": "https://example.com"}))
			wantOnly(t, err, field, "must be an array of URL strings, got an object")
			_, err = launch.Parse(withLaunch(t, name, []any{"https://example.com", 7, nil, "ftp://x"}))
			errs := problems(t, err)
			want := []string{field + "[1]", field + "[2]", field + "[3]"}
			if len(errs) != len(want) {
				t.Fatalf("problems = %q, want one each on %q", errs, want)
			}
			for i, fe := range errs {
				if fe.Field != want[i] {
					t.Errorf("problem %d on %q, want %q (%q)", i, fe.Field, want[i], errs)
				}
			}
		})
	}
}

func TestURICount(t *testing.T) {
	uris := make([]string, launch.MaxURIs+1)
	for i := range uris {
		uris[i] = fmt.Sprintf("https://example.com/%d", i)
	}
	for _, name := range []string{"video_uris", "screenshot_uris"} {
		parseOK(t, withLaunch(t, name, uris[:launch.MaxURIs]))
		_, err := launch.Parse(withLaunch(t, name, uris))
		wantOnly(t, err, "launch."+name, fmt.Sprintf("must have at most %d entries, got %d", launch.MaxURIs, launch.MaxURIs+1))
	}
}

func TestRegions(t *testing.T) {
	const id = "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8"
	for _, v := range []any{
		nil,
		[]any{},
		[]any{map[string]any{"region": "IN"}},
		[]any{map[string]any{"region": "IN", "region_id": nil}},
		[]any{map[string]any{"region": "IN", "region_id": ""}},
		[]any{map[string]any{"region": "IN", "region_id": strings.ToUpper(id)}},
	} {
		parseOK(t, withRegions(t, v))
	}
	m := sampleJob(t)
	delete(m, "regions")
	parseOK(t, encode(t, m))

	for _, tc := range []struct {
		regions       any
		field, reason string
	}{
		{[]any{map[string]any{}}, "regions[0].region", "is required and must be a non-empty string"},
		{[]any{map[string]any{"region_id": id}}, "regions[0].region", "is required"},
		{[]any{map[string]any{"region": ""}}, "regions[0].region", "is required"},
		{[]any{map[string]any{"region": " "}}, "regions[0].region", "is required"},
		{[]any{map[string]any{"region": nil}}, "regions[0].region", "is required"},
		{[]any{map[string]any{"region": 5}}, "regions[0].region", "must be a string, got a number"},
		{[]any{map[string]any{"region": "IN", "region_id": "not-a-uuid"}}, "regions[0].region_id", `must be a UUID such as 8346a250-d7a9-47dc-8202-a8b1c2d3e4e8, got "not-a-uuid"`},
		{[]any{map[string]any{"region": "IN", "region_id": "8346a250-d7a9-47dc-8202-a8XXXXXXXXe8"}}, "regions[0].region_id", "must be a UUID"},
		{[]any{map[string]any{"region": "IN", "region_id": id + "0"}}, "regions[0].region_id", "must be a UUID"},
		{[]any{map[string]any{"region": "IN", "region_id": "{" + id + "}"}}, "regions[0].region_id", "must be a UUID"},
		{[]any{map[string]any{"region": "IN", "region_id": []string{id}}}, "regions[0].region_id", "must be a string, got an array"},
		{[]any{map[string]any{"region": "IN"}, "IN"}, "regions[1]", "must be a JSON object"},
		{[]any{map[string]any{"region": "IN"}, nil}, "regions[1]", "must be a JSON object"},
		{map[string]any{"region": "IN"}, "regions", "must be an array"},
		{"IN", "regions", "must be an array"},
	} {
		_, err := launch.Parse(withRegions(t, tc.regions))
		wantOnly(t, err, tc.field, tc.reason)
	}
}

func TestRegionCount(t *testing.T) {
	regions := make([]any, launch.MaxRegions+1)
	for i := range regions {
		regions[i] = map[string]any{"region": fmt.Sprint("R", i)}
	}
	parseOK(t, withRegions(t, regions[:launch.MaxRegions]))
	_, err := launch.Parse(withRegions(t, regions))
	wantOnly(t, err, "regions", fmt.Sprintf("must have at most %d entries, got %d", launch.MaxRegions, launch.MaxRegions+1))
}

func TestID(t *testing.T) {
	m := sampleJob(t)
	for _, id := range []string{"a", "0", "job-1", "batch_7.row:12@host", strings.Repeat("x", launch.MaxIDLen)} {
		m["id"] = id
		if j := parseOK(t, encode(t, m)); j.ID != id {
			t.Errorf("ID = %q, want %q", j.ID, id)
		}
		if err := launch.ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, v := range []any{nil, ""} {
		m["id"] = v
		if j := parseOK(t, encode(t, m)); j.ID != "" {
			t.Errorf("id %#v: ID = %q, want none", v, j.ID)
		}
	}
	for _, tc := range []struct {
		id     any
		reason string
	}{
		{strings.Repeat("x", launch.MaxIDLen+1), fmt.Sprintf("must be at most %d characters, got %d", launch.MaxIDLen, launch.MaxIDLen+1)},
		{"-a", "must start with a letter or digit"},
		{".a", "must start with a letter or digit"},
		{"a b", "contain only letters, digits"},
		{"a/b", "contain only letters, digits"},
		{"ä", "contain only letters, digits"},
		{" a", "must start with a letter or digit"},
		{12, "must be a string, got a number"},
	} {
		m["id"] = tc.id
		_, err := launch.Parse(encode(t, m))
		wantOnly(t, err, "id", tc.reason)
		if s, ok := tc.id.(string); ok {
			wantOnly(t, launch.ValidateID(s), "id", tc.reason)
		}
	}
}

// TestPriority: a job's priority is one of three names exactly, or not
// given (absent, null or empty); anything else is an error of the field
// priority. It is neither in the body nor in the derived ID.
func TestPriority(t *testing.T) {
	m := sampleJob(t)
	for _, p := range launch.Priorities {
		m["priority"] = string(p)
		j := parseOK(t, encode(t, m))
		if j.Priority != p {
			t.Errorf("Priority = %q, want %q", j.Priority, p)
		}
		if string(j.Body()) != sampleBody || launch.DeriveID("SID1", j) != sampleID {
			t.Errorf("priority %s changes the body or the derived ID: %s", p, j.Body())
		}
	}
	for _, v := range []any{nil, ""} {
		m["priority"] = v
		if j := parseOK(t, encode(t, m)); j.Priority != "" {
			t.Errorf("priority %#v: Priority = %q, want none", v, j.Priority)
		}
	}
	for _, tc := range []struct {
		priority any
		reason   string
	}{
		{"urgent", `must be high, default or low (or left out for the producer's), got "urgent"`},
		{"HIGH", `must be high, default or low (or left out for the producer's), got "HIGH"`},
		{" low", `must be high, default or low (or left out for the producer's), got " low"`},
		{strings.Repeat("x", 100), `got "` + strings.Repeat("x", 20) + `…"`},
		{1, "must be a string, got a number"},
		{[]string{"high"}, "must be a string, got an array"},
	} {
		m["priority"] = tc.priority
		_, err := launch.Parse(encode(t, m))
		wantOnly(t, err, "priority", tc.reason)
	}
	j := parseOK(t, []byte(sample))
	j.Priority = "soon"
	wantOnly(t, j.Validate(), "priority", "must be high, default or low")
	if _, err := launch.Parse([]byte(`{"launch":{},"prority":"high"}`)); err == nil || !strings.Contains(err.Error(), `prority: unknown field (did you mean "priority"?)`) {
		t.Errorf("a typo of priority: %v", err)
	}
}

func TestParsePriority(t *testing.T) {
	for in, want := range map[string]launch.Priority{"": launch.PriorityDefault, " ": launch.PriorityDefault,
		"high": launch.PriorityHigh, "HIGH": launch.PriorityHigh, " Low\t": launch.PriorityLow, "default": launch.PriorityDefault} {
		if got, err := launch.ParsePriority(in); err != nil || got != want {
			t.Errorf("ParsePriority(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"urgent", "high!", "0"} {
		if got, err := launch.ParsePriority(in); err == nil || !strings.Contains(err.Error(), "want high, default or low") {
			t.Errorf("ParsePriority(%q) = %q, %v; want an error", in, got, err)
		}
	}
}

func TestUnknownFields(t *testing.T) {
	for _, tc := range []struct {
		json, field, reason string
	}{
		{`{"launch":{"optin_desription":"x"}}`, "launch.optin_desription", `unknown field (did you mean "optin_description"?)`},
		{`{"launch":{"Agent_No":"1"}}`, "launch.Agent_No", `unknown field (did you mean "agent_no"?)`},
		{`{"launch":{"lanch_type":"1"}}`, "launch.lanch_type", `unknown field (did you mean "launch_type"?)`},
		{`{"launch":{"video_uri":[]}}`, "launch.video_uri", `unknown field (did you mean "video_uris"?)`},
		{`{"launch":{"status":"ACTIVE"}}`, "launch.status", "unknown field"},
		{`{"launch":{},"region":[]}`, "region", `unknown field (did you mean "regions"?)`},
		{`{"launch":{},"ID":"x"}`, "ID", `unknown field (did you mean "id"?)`},
		{`{"launch":{},"foo":1}`, "foo", "unknown field"},
		{`{"launch":{},"x":1}`, "x", "unknown field"},
		{`{"launch":{},"regions":[{"region":"a","regionid":"b"}]}`, "regions[0].regionid", `unknown field (did you mean "region_id"?)`},
		{`{"launch":{},"regions":[{"region":"a"},{"region":"a","entry_point":0}]}`, "regions[1].entry_point", "unknown field"},
	} {
		_, err := launch.Parse([]byte(tc.json))
		var found *launch.FieldError
		for _, fe := range problems(t, err) {
			if fe.Field == tc.field {
				found = &fe
				break
			}
		}
		if found == nil || found.Reason != tc.reason {
			t.Errorf("Parse(%s) = %v, want %s: %s", tc.json, err, tc.field, tc.reason)
		}
	}
}

func TestDuplicateKeys(t *testing.T) {
	const launchObj = `{"optin_description":"a","trigger_description":"b","interactions_description":"c",` +
		`"optout_description":"d","agent_access_instructions":"e","agent_no":"1"`
	for _, tc := range []struct {
		json, field string
	}{
		{`{"id":"a","launch":` + launchObj + `},"id":"b"}`, "id"},
		{`{"launch":` + launchObj + `},"launch":` + launchObj + `}}`, "launch"},
		{`{"launch":` + launchObj + `,"agent_no":"2"}}`, "launch.agent_no"},
		{`{"launch":` + launchObj + `,"video_uris":[],"video_uris":null}}`, "launch.video_uris"},
		{`{"launch":` + launchObj + `},"regions":[{"region":"a","region":"b"}]}`, "regions[0].region"},
		{`{"launch":` + launchObj + `},"regions":[],"regions":[]}`, "regions"},
	} {
		_, err := launch.Parse([]byte(tc.json))
		wantOnly(t, err, tc.field, "appears more than once")
	}
}

func TestWrongTypes(t *testing.T) {
	for _, tc := range []struct {
		json, field, reason string
	}{
		{`[]`, "", "a job must be a JSON object"},
		{`"job"`, "", "a job must be a JSON object"},
		{`1`, "", "a job must be a JSON object"},
		{`null`, "", "a job must be a JSON object"},
		{`{"launch":[]}`, "launch", "must be a JSON object"},
		{`{"launch":"x"}`, "launch", "must be a JSON object"},
		{`{"launch":null}`, "launch", "must be a JSON object"},
		{`{"launch":{},"id":{}}`, "id", "must be a string, got an object"},
		{`{"launch":{},"id":true}`, "id", "must be a string, got a boolean"},
	} {
		_, err := launch.Parse([]byte(tc.json))
		errs := problems(t, err)
		if errs[0].Field != tc.field || errs[0].Reason != tc.reason {
			t.Errorf("Parse(%s) = %v, want first %q: %s", tc.json, err, tc.field, tc.reason)
		}
	}
}

func TestMissingLaunch(t *testing.T) {
	_, err := launch.Parse([]byte(`{"id":"x"}`))
	wantOnly(t, err, "launch", "is required")
}

func TestParseInvalidJSON(t *testing.T) {
	for _, tc := range []struct{ json, reason string }{
		{``, "invalid JSON: unexpected end of input"},
		{` `, "invalid JSON: unexpected end of input"},
		{`{"launch":`, "invalid JSON: unexpected end of input"},
		{`{"launch":{}`, "invalid JSON: unexpected end of input"},
		{`{"launch":{}}}`, "invalid JSON: unexpected data after the job object"},
		{`{"launch":{}} {}`, "invalid JSON: unexpected data after the job object"},
		{`{"launch":{}} x`, "invalid JSON: unexpected data after the job object"},
		{`{"launch":{}}` + "\n" + `{"launch":{}}`, "invalid JSON: unexpected data after the job object"},
		{`{launch:{}}`, "invalid JSON: invalid character 'l' looking for beginning of object key string (at byte 2)"},
		{`{"launch":{},}`, "invalid JSON: invalid character '}'"},
		// encoding/json names the byte (Go 1.26, 'ï') or the rune (1.27): either way, refused.
		{"\ufeff{}", "invalid JSON: invalid character '"},
		{`nul`, "invalid JSON:"},
	} {
		_, err := launch.Parse([]byte(tc.json))
		errs := problems(t, err)
		if len(errs) != 1 || errs[0].Field != "" || !strings.HasPrefix(errs[0].Reason, tc.reason) {
			t.Errorf("Parse(%q) = %v, want only: %s", tc.json, err, tc.reason)
		}
	}
	// Surrounding white space, a trailing newline included, is not data.
	parseOK(t, []byte(" \n\t"+sample+"\r\n"))
}

func TestJobSize(t *testing.T) {
	data := []byte(sample)
	pad := bytes.Repeat([]byte(" "), launch.MaxJobBytes-len(data))
	parseOK(t, append(append([]byte{}, data...), pad...))

	big := append(append(append([]byte{}, data...), pad...), ' ')
	_, err := launch.Parse(big)
	wantOnly(t, err, "", fmt.Sprintf("job is %d bytes, more than the %d allowed", launch.MaxJobBytes+1, launch.MaxJobBytes))
}

// TestEncodedSize checks that a job within every per-field bound is still
// rejected when its JSON would not fit in MaxJobBytes, since it could not be
// read back from a JSONL export; JSON escaping (here of U+2028, a line
// separator that encoding/json always writes as six bytes) makes it far
// longer than its text.
func TestEncodedSize(t *testing.T) {
	ctl := strings.Repeat("\u2028", launch.MaxTextLen-1) + "x"
	j := launch.Job{Launch: launch.Launch{
		OptinDescription:        ctl,
		TriggerDescription:      ctl,
		InteractionsDescription: ctl,
		OptoutDescription:       ctl,
		AgentAccessInstructions: ctl,
		AgentNo:                 ctl,
		LaunchName:              ctl,
		ProviderLaunchID:        ctl,
	}}
	n := len(j.Body())
	if n <= launch.MaxJobBytes {
		t.Fatalf("test job is only %d bytes encoded", n)
	}
	wantOnly(t, j.Validate(), "", fmt.Sprintf("job is %d bytes as JSON, more than the %d allowed", n, launch.MaxJobBytes))

	// The same text as JSON escapes is also too long for Parse, so the
	// encoded-size check is what guards jobs from other sources (CSV).
	j.Launch.OptinDescription = strings.Repeat("\u2028", 100) + "x"
	j.Launch.TriggerDescription = "b"
	j.Launch.InteractionsDescription = "c"
	j.Launch.OptoutDescription = "d"
	j.Launch.AgentAccessInstructions = "e"
	j.Launch.AgentNo = "1"
	j.Launch.LaunchName = ""
	j.Launch.ProviderLaunchID = ""
	if err := j.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

// TestTextLengthInCharacters checks that MaxTextLen counts characters, not
// bytes, so that non-Latin text gets the same room.
func TestTextLengthInCharacters(t *testing.T) {
	parseOK(t, withLaunch(t, "optin_description", strings.Repeat("ह", launch.MaxTextLen)))
	_, err := launch.Parse(withLaunch(t, "optin_description", strings.Repeat("ह", launch.MaxTextLen+1)))
	wantOnly(t, err, "launch.optin_description", fmt.Sprintf("got %d", launch.MaxTextLen+1))
}

func TestValidateInvalidUTF8(t *testing.T) {
	j := parseOK(t, []byte(sample))
	j.Launch.LaunchName = "a\xffb"
	wantOnly(t, j.Validate(), "launch.launch_name", "must be valid UTF-8")

	// A URI too (found by FuzzCSV: JSON would turn the byte into U+FFFD, so
	// Kaleyra would be sent another URI than the one validated).
	j = parseOK(t, []byte(sample))
	j.Launch.VideoURIs = []string{"http://\xff.example.com/v"}
	wantOnly(t, j.Validate(), "launch.video_uris[0]", "must be valid UTF-8")
}

// TestParseInvalidUTF8 checks that text encoding/json would silently
// change to U+FFFD (invalid UTF-8, a lone surrogate escape) is refused with
// its field, in the words Validate uses for a CSV cell, wherever it is: the
// single-job parse of the HTTP API and of each JSONL line.
func TestParseInvalidUTF8(t *testing.T) {
	launchField := func(name string) func(m map[string]any) {
		return func(m map[string]any) { launchOf(m)[name] = placeholder }
	}
	for _, tc := range []struct {
		field string
		set   func(m map[string]any)
		raw   string
	}{
		{"launch.optin_description", launchField("optin_description"), "\"Opt \xff in\""},
		{"launch.agent_no", launchField("agent_no"), "\"489\xc3\""},
		{"launch.launch_name", launchField("launch_name"), `"launch \ud800"`},
		{"launch.trigger_description", launchField("trigger_description"), `"\udc00 START"`},
		{"launch.provider_launch_id", launchField("provider_launch_id"), `"p\ud83d\u0041"`},
		{"launch.video_uris[1]", launchField("video_uris"), "[\"https://example.com/a\", \"https://example.com/\xe2\x82\"]"},
		{"launch.screenshot_uris[0]", launchField("screenshot_uris"), `["https://example.com/\ud800"]`},
		{"id", func(m map[string]any) { m["id"] = placeholder }, "\"job-\xff\""},
		{"regions[0].region", func(m map[string]any) { m["regions"] = placeholder }, "[{\"region\": \"IN\xa0\"}]"},
		{"regions[0].region_id", func(m map[string]any) { m["regions"] = placeholder }, "[{\"region\": \"IN\", \"region_id\": \"\xff\"}]"},
	} {
		_, err := launch.Parse(withRaw(t, tc.set, tc.raw))
		wantOnly(t, err, tc.field, "must be valid UTF-8")
	}
	// Escapes that decode exactly are text like any other.
	j := parseOK(t, withRaw(t, launchField("optin_description"), `"caf\u00e9 \ud83d\ude00 \ufffd \\ud800"`))
	if want := "café 😀 \ufffd \\ud800"; j.Launch.OptinDescription != want {
		t.Errorf("optin_description = %q, want %q", j.Launch.OptinDescription, want)
	}
}

// placeholder marks the value withRaw replaces.
const placeholder = "@raw@"

// withRaw returns sample changed by set, which puts placeholder where raw,
// JSON text written as it is, goes: json.Marshal would repair what a test
// wants broken.
func withRaw(t testing.TB, set func(m map[string]any), raw string) []byte {
	t.Helper()
	m := sampleJob(t)
	set(m)
	return bytes.Replace(encode(t, m), []byte(`"`+placeholder+`"`), []byte(raw), 1)
}

// TestControlCharacters checks the rule of Validate: the free-text
// descriptions may hold line breaks and tabs but no other control character
// (C0, DEL, C1), and every other text field, URIs included, none at all;
// each refusal names the field, the character and where it is.
func TestControlCharacters(t *testing.T) {
	descriptions := map[string]func(j *launch.Job, s string){
		"launch.optin_description":         func(j *launch.Job, s string) { j.Launch.OptinDescription = s },
		"launch.trigger_description":       func(j *launch.Job, s string) { j.Launch.TriggerDescription = s },
		"launch.interactions_description":  func(j *launch.Job, s string) { j.Launch.InteractionsDescription = s },
		"launch.optout_description":        func(j *launch.Job, s string) { j.Launch.OptoutDescription = s },
		"launch.agent_access_instructions": func(j *launch.Job, s string) { j.Launch.AgentAccessInstructions = s },
	}
	others := map[string]func(j *launch.Job, s string){
		"launch.agent_no":           func(j *launch.Job, s string) { j.Launch.AgentNo = s },
		"launch.launch_name":        func(j *launch.Job, s string) { j.Launch.LaunchName = s },
		"launch.provider_launch_id": func(j *launch.Job, s string) { j.Launch.ProviderLaunchID = s },
		"regions[0].region":         func(j *launch.Job, s string) { j.Regions[0].Region = s },
		"launch.video_uris[0]":      func(j *launch.Job, s string) { j.Launch.VideoURIs = []string{"https://example.com/" + s} },
		"launch.screenshot_uris[0]": func(j *launch.Job, s string) { j.Launch.ScreenshotURIs = []string{"https://example.com/" + s} },
	}
	// Each holds its control character as its third character.
	refused := map[string]string{
		"ab\x1b[31m": "U+001B at character 3", "ab\x00": "U+0000 at character 3", "ab\r\n": "U+000D at character 3",
		"ab\x7f": "U+007F at character 3", "ab\u0085": "U+0085 at character 3", "éé\u009b2J": "U+009B at character 3",
	}
	for field, set := range descriptions {
		j := parseOK(t, []byte(sample))
		set(&j, "Line one\n\tLine two\n")
		if err := j.Validate(); err != nil {
			t.Errorf("%s with a line break and a tab: %v", field, err)
		}
		for s, where := range refused {
			j := parseOK(t, []byte(sample))
			set(&j, s)
			wantOnly(t, j.Validate(), field, "must not contain control characters other than line breaks (\\n) and tabs, found "+where)
		}
	}
	for field, set := range others {
		for s, where := range refused {
			j := parseOK(t, []byte(sample))
			set(&j, s)
			if strings.Contains(field, "uris") {
				where = strings.Replace(where, "character 3", fmt.Sprintf("character %d", len("https://example.com/")+3), 1)
			}
			wantOnly(t, j.Validate(), field, "must not contain control characters, found "+where)
		}
		for _, s := range []string{"ab\ncd", "ab\tcd"} {
			j := parseOK(t, []byte(sample))
			set(&j, s)
			wantOnly(t, j.Validate(), field, "must not contain control characters, found U+000")
		}
	}
	// Through Parse, JSON escapes are the same characters.
	_, err := launch.Parse(withLaunch(t, "agent_no", "489\u001b00"))
	wantOnly(t, err, "launch.agent_no", "must not contain control characters, found U+001B at character 4")
	parseOK(t, withLaunch(t, "optin_description", "Reply START\nto opt in"))
}

// TestAllProblemsAtOnce checks that one Parse reports every problem of a
// job, decoding and validation alike, each with its path, and that a field
// with a decoding problem is not reported again by validation. Decoding
// problems come first (repeated keys of an object before its other
// problems), then validation problems in field order.
func TestAllProblemsAtOnce(t *testing.T) {
	data := `{
	  "id": "-bad",
	  "launch": {
	    "optin_desription": "Opt in",
	    "trigger_description": "",
	    "interactions_description": 3,
	    "optout_description": "Stop",
	    "agent_access_instructions": "demo",
	    "agent_no": "48900",
	    "agent_no": "48901",
	    "launch_type": "one",
	    "video_uris": ["https://example.com/v", "ftp://example.com/v", false],
	    "screenshot_uris": "https://example.com/s"
	  },
	  "regions": [
	    {"region": "IN", "region_id": "8346a250"},
	    {"region": "", "dirty_flag": "NEW"},
	    7
	  ],
	  "extra": true
	}`
	_, err := launch.Parse([]byte(data))
	want := []launch.FieldError{
		{"launch.agent_no", "appears more than once"},
		{"launch.optin_desription", `unknown field (did you mean "optin_description"?)`},
		{"launch.interactions_description", "must be a string, got a number"},
		{"launch.video_uris[2]", "must be a string, got a boolean"},
		{"launch.screenshot_uris", "must be an array of URL strings, got a string"},
		{"regions[1].dirty_flag", "unknown field"},
		{"regions[2]", "must be a JSON object"},
		{"extra", "unknown field"},
		{"id", "must start with a letter or digit and contain only letters, digits and . _ : @ -"},
		{"launch.optin_description", "is required and must be a non-empty string"},
		{"launch.trigger_description", "is required and must be a non-empty string"},
		{"launch.launch_type", `must be a numeric string such as "1", got "one"`},
		{"launch.video_uris[1]", `must be an absolute http(s) URL, got "ftp://example.com/v"`},
		{"regions[0].region_id", `must be a UUID such as 8346a250-d7a9-47dc-8202-a8b1c2d3e4e8, got "8346a250"`},
		{"regions[1].region", "is required and must be a non-empty string"},
	}
	got := problems(t, err)
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("problem %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestErrorStrings(t *testing.T) {
	fe := launch.FieldError{Field: "launch.agent_no", Reason: "is required"}
	if got := fe.Error(); got != "launch.agent_no: is required" {
		t.Errorf("FieldError.Error() = %q", got)
	}
	if got := (launch.FieldError{Reason: "invalid JSON"}).Error(); got != "invalid JSON" {
		t.Errorf("FieldError.Error() without field = %q", got)
	}
	ve := &launch.ValidationError{Errors: []launch.FieldError{fe, {Field: "regions", Reason: "must be an array"}}}
	if got := ve.Error(); got != "invalid job: launch.agent_no: is required; regions: must be an array" {
		t.Errorf("ValidationError.Error() = %q", got)
	}
	b, _ := json.Marshal(fe)
	if string(b) != `{"field":"launch.agent_no","reason":"is required"}` {
		t.Errorf("FieldError as JSON = %s", b)
	}
}

func TestBodyCanonical(t *testing.T) {
	j := parseOK(t, []byte(sample))
	if got := string(j.Body()); got != sampleBody {
		t.Fatalf("Body() =\n%s\nwant\n%s", got, sampleBody)
	}
	j.ID = "my-id"
	if got := string(j.Body()); got != sampleBody {
		t.Errorf("Body() with an ID = %s, want the ID left out", got)
	}
	checkSortedCompact(t, j.Body())
}

// checkSortedCompact checks that body is JSON with no white space outside
// strings and with the keys of every object in sorted order.
func checkSortedCompact(t testing.TB, body []byte) {
	t.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		t.Fatalf("Body is not JSON: %v\n%s", err, body)
	}
	if !bytes.Equal(compact.Bytes(), body) {
		t.Fatalf("Body has white space:\n%s", body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object  bool
		wantKey bool
		last    string
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		top := len(stack) - 1
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				if top >= 0 && stack[top].object {
					stack[top].wantKey = true
				}
				stack = append(stack, frame{object: tok == '{', wantKey: true})
			default:
				stack = stack[:top]
			}
			continue
		case string:
			if top >= 0 && stack[top].object && stack[top].wantKey {
				if tok <= stack[top].last {
					t.Fatalf("key %q after %q: not sorted\n%s", tok, stack[top].last, body)
				}
				stack[top].last = tok
				stack[top].wantKey = false
				continue
			}
		}
		if top >= 0 && stack[top].object {
			stack[top].wantKey = true
		}
	}
}

func TestBodyNoHTMLEscaping(t *testing.T) {
	j := parseOK(t, withLaunch(t, "optin_description", `Reply <START> & "go"`))
	if want := `"optin_description":"Reply <START> & \"go\""`; !bytes.Contains(j.Body(), []byte(want)) {
		t.Errorf("Body() = %s, want it to contain %s", j.Body(), want)
	}
}

func TestBodyAppliesDefaultWithoutChangingJob(t *testing.T) {
	without := parseOK(t, withLaunch(t, "launch_type", remove))
	with := parseOK(t, withLaunch(t, "launch_type", "1"))
	other := parseOK(t, withLaunch(t, "launch_type", "2"))
	if !bytes.Equal(without.Body(), with.Body()) {
		t.Errorf("Body without launch_type:\n%s\ndiffers from Body with \"1\":\n%s", without.Body(), with.Body())
	}
	if launch.DeriveID("S", without) != launch.DeriveID("S", with) {
		t.Error("DeriveID differs between no launch_type and the default")
	}
	if launch.DeriveID("S", other) == launch.DeriveID("S", with) {
		t.Error("DeriveID is the same for launch_type 1 and 2")
	}

	// A job built in code, without the default, gets it in its body but is
	// not changed itself.
	j := without
	j.Launch.LaunchType = ""
	if !bytes.Equal(j.Body(), with.Body()) {
		t.Errorf("Body() = %s, want the default applied", j.Body())
	}
	if j.Launch.LaunchType != "" {
		t.Error("Body() changed the job")
	}
	if err := j.Validate(); err != nil {
		t.Errorf("Validate() of a job without launch_type: %v", err)
	}
	j.ApplyDefaults()
	if j.Launch.LaunchType != launch.DefaultLaunchType {
		t.Errorf("ApplyDefaults: launch_type = %q", j.Launch.LaunchType)
	}
}

func TestBodyEmptyListsLeftOut(t *testing.T) {
	a := parseOK(t, []byte(`{"launch":{"optin_description":"a","trigger_description":"b",`+
		`"interactions_description":"c","optout_description":"d","agent_access_instructions":"e","agent_no":"1",`+
		`"video_uris":[],"screenshot_uris":null,"provider_launch_id":null},"regions":[]}`))
	b := parseOK(t, []byte(`{"launch":{"optin_description":"a","trigger_description":"b",`+
		`"interactions_description":"c","optout_description":"d","agent_access_instructions":"e","agent_no":"1"}}`))
	if !bytes.Equal(a.Body(), b.Body()) {
		t.Errorf("empty and null lists change the body:\n%s\n%s", a.Body(), b.Body())
	}
}

func TestDeriveID(t *testing.T) {
	j := parseOK(t, []byte(sample))
	if got := launch.DeriveID("SID1", j); got != sampleID {
		t.Errorf("DeriveID(SID1, sample) = %s, want the golden %s; changing it re-launches every job ever enqueued", got, sampleID)
	}
	if a, b := launch.DeriveID("SID1", j), launch.DeriveID("SID2", j); a == b {
		t.Errorf("DeriveID does not depend on the SID: %s", a)
	}
	if got := launch.DeriveID("", j); got == sampleID || len(got) != 32 {
		t.Errorf("DeriveID with an empty SID = %q", got)
	}

	// The ID field is not part of the derivation, and neither are the
	// order of keys nor white space in the input.
	j.ID = "own"
	if got := launch.DeriveID("SID1", j); got != sampleID {
		t.Errorf("DeriveID depends on the job's own ID: %s", got)
	}
	reordered := `{"regions":[{"region":"4f4bf2b0-5110-44e1-9aa1-43392c7d3b17","region_id":"8346a250-d7a9-47dc-8202-a8b1c2d3e4e8"}],` +
		`"id":"","launch":{"agent_no":"48900","video_uris":["https://www.example.com/videos"],"screenshot_uris":["https://www.example.com/uris"],` +
		`"launch_type":"1","launch_name":"launch_48900","provider_launch_id":"launch_001_google_rcs","agent_access_instructions":"This is a demo account",` +
		`"optout_description":"Stop","interactions_description":"Demo Messages","trigger_description":"START","optin_description":"Bigbasket Optin"}}`
	if got := launch.DeriveID("SID1", parseOK(t, []byte(reordered))); got != sampleID {
		t.Errorf("DeriveID of the reordered sample = %s, want %s", got, sampleID)
	}

	// Any change of the payload changes the ID, the order of regions and
	// of URIs included.
	m := sampleJob(t)
	launchOf(m)["agent_no"] = "48901"
	if launch.DeriveID("SID1", parseOK(t, encode(t, m))) == sampleID {
		t.Error("DeriveID ignores agent_no")
	}
	two := parseOK(t, withLaunch(t, "video_uris", []string{"https://a.example", "https://b.example"}))
	swapped := parseOK(t, withLaunch(t, "video_uris", []string{"https://b.example", "https://a.example"}))
	if launch.DeriveID("SID1", two) == launch.DeriveID("SID1", swapped) {
		t.Error("DeriveID ignores the order of URIs")
	}
}

func TestIDFor(t *testing.T) {
	j := parseOK(t, []byte(sample))
	if got := launch.IDFor("SID1", j); got != sampleID {
		t.Errorf("IDFor without an ID = %s, want the derived %s", got, sampleID)
	}
	j.ID = "mine"
	if got := launch.IDFor("SID1", j); got != "mine" {
		t.Errorf("IDFor with an ID = %s, want it", got)
	}
}

func BenchmarkParse(b *testing.B) {
	data := []byte(sample)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := launch.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	j := parseOK(b, []byte(sample))
	b.ReportAllocs()
	for b.Loop() {
		if err := j.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBody(b *testing.B) {
	j := parseOK(b, []byte(sample))
	b.ReportAllocs()
	for b.Loop() {
		_ = j.Body()
	}
}
