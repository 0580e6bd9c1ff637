package launch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/baseurl"
)

// The tests in this file hold Body and Validate to the code they replaced,
// kept below as it was but for its names (and methods made functions): Body
// by encoding/json, Validate with regular expressions and a field path built
// for every check. What the change left alone (problems, controlProblem,
// checkURIs, uriProblem, isDigits, truncate) the two share. Body's bytes
// define derived job IDs and Validate's reasons are part of the API, so
// neither may differ in a single byte.

// body is the request Kaleyra receives, as oldBody encoded it: the job
// without its ID, SID and priority.
type body struct {
	Launch  Launch   `json:"launch"`
	Regions []Region `json:"regions,omitempty"`
}

// oldBody is Body as it was.
func oldBody(j Job) []byte {
	j.ApplyDefaults()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// A struct of strings and slices of strings cannot fail to encode.
	_ = enc.Encode(body{Launch: j.Launch, Regions: j.Regions})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

var (
	oldIDPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]*$`)
	oldUUIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// oldValidateID is ValidateID as it was.
func oldValidateID(id string) error {
	var p problems
	oldCheckID(&p, id)
	return p.err()
}

func oldCheckID(p *problems, id string) {
	switch {
	case len(id) > MaxIDLen:
		p.add("id", "must be at most %d characters, got %d", MaxIDLen, len(id))
	case !oldIDPattern.MatchString(id):
		p.add("id", "must start with a letter or digit and contain only letters, digits and . _ : @ -")
	}
}

// oldValidate is Validate as it was.
func oldValidate(j Job) error {
	var p problems
	oldValidateTo(j, &p)
	return p.err()
}

func oldValidateTo(j Job, p *problems) {
	j.ApplyDefaults()
	if j.ID != "" {
		oldCheckID(p, j.ID)
	}
	if j.SID != "" {
		if err := baseurl.CheckSID(j.SID); err != nil {
			p.add("sid", "%v", err)
		}
	}
	if j.Priority != "" && !slices.Contains(Priorities, j.Priority) {
		p.add("priority", "must be high, default or low (or left out for the producer's), got %q", truncate(string(j.Priority), 20))
	}
	l := j.Launch
	descriptions := []struct{ name, value string }{
		{"optin_description", l.OptinDescription},
		{"trigger_description", l.TriggerDescription},
		{"interactions_description", l.InteractionsDescription},
		{"optout_description", l.OptoutDescription},
		{"agent_access_instructions", l.AgentAccessInstructions},
	}
	for _, f := range descriptions {
		oldCheckText(p, "launch."+f.name, f.value, required|multiline)
	}
	oldCheckText(p, "launch.agent_no", l.AgentNo, required)
	oldCheckText(p, "launch.provider_launch_id", l.ProviderLaunchID, 0)
	oldCheckText(p, "launch.launch_name", l.LaunchName, 0)
	if len(l.LaunchType) > maxLaunchType || !isDigits(l.LaunchType) {
		p.add("launch.launch_type", "must be a numeric string such as %q, got %q", DefaultLaunchType, truncate(l.LaunchType, 20))
	}
	checkURIs(p, "launch.video_uris", l.VideoURIs)
	checkURIs(p, "launch.screenshot_uris", l.ScreenshotURIs)
	if len(j.Regions) > MaxRegions {
		p.add("regions", "must have at most %d entries, got %d", MaxRegions, len(j.Regions))
	}
	for i, r := range j.Regions {
		path := fmt.Sprintf("regions[%d]", i)
		oldCheckText(p, path+".region", r.Region, required)
		if r.RegionID != "" && !oldUUIDPattern.MatchString(r.RegionID) {
			p.add(path+".region_id", "must be a UUID such as 8346a250-d7a9-47dc-8202-a8b1c2d3e4e8, got %q", truncate(r.RegionID, 60))
		}
	}
	if n, ok := oldEncodedLen(j); !ok {
		p.add("", "job is %d bytes as JSON, more than the %d allowed", n, MaxJobBytes)
	}
}

func oldEncodedLen(j Job) (n int, ok bool) {
	const (
		fixed     = 1024 // braces, key names, quotes and commas of one job
		perRegion = 64   // the same for one region
		perURI    = 4    // quotes and a comma
		escape    = 6    // the longest JSON escape of one byte, \u00XX
	)
	l := j.Launch
	bound := fixed + escape*(len(j.ID)+len(l.AgentAccessInstructions)+len(l.AgentNo)+
		len(l.InteractionsDescription)+len(l.LaunchName)+len(l.LaunchType)+
		len(l.OptinDescription)+len(l.OptoutDescription)+len(l.ProviderLaunchID)+
		len(l.TriggerDescription))
	for _, list := range [][]string{l.VideoURIs, l.ScreenshotURIs} {
		for _, u := range list {
			bound += perURI + escape*len(u)
		}
	}
	for _, r := range j.Regions {
		bound += perRegion + escape*(len(r.Region)+len(r.RegionID))
	}
	if bound <= MaxJobBytes {
		return bound, true
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(j)
	n = buf.Len() - 1 // the newline Encode adds
	return n, n <= MaxJobBytes
}

func oldCheckText(p *problems, field, value string, rule textRule) {
	switch {
	case strings.TrimSpace(value) == "":
		if rule&required != 0 {
			p.add(field, "is required and must be a non-empty string")
		} else if value != "" {
			p.add(field, "must not be blank when given")
		}
	case !utf8.ValidString(value):
		p.add(field, reasonUTF8)
	case controlProblem(value, rule&multiline != 0) != "":
		p.add(field, "%s", controlProblem(value, rule&multiline != 0))
	case utf8.RuneCountInString(value) > MaxTextLen:
		p.add(field, "must be at most %d characters, got %d", MaxTextLen, utf8.RuneCountInString(value))
	}
}

// CheckSameAsOld fails t unless j's body and validation are those of the
// code Body and Validate replaced. The tests of package launch_test call it
// for every job parseOK parses.
func CheckSameAsOld(t testing.TB, j Job) {
	t.Helper()
	if got, want := j.Body(), oldBody(j); !bytes.Equal(got, want) {
		t.Fatalf("Body() of %#v =\n%q\nwant, as before,\n%q", j, got, want)
	}
	if got, want := j.Validate(), oldValidate(j); !sameError(got, want) {
		t.Fatalf("Validate() of %#v =\n%v\nwant, as before,\n%v", j, got, want)
	}
}

// sameError reports whether got and want are both nil, or both a
// *ValidationError with the same field errors.
func sameError(got, want error) bool {
	if got == nil || want == nil {
		return got == want
	}
	var g, w *ValidationError
	return errors.As(got, &g) && errors.As(want, &w) && reflect.DeepEqual(g.Errors, w.Errors)
}

// fuzzTexts are seeds for the text of fuzzJob: what JSON escapes, what it
// replaces, what Validate refuses, and values that are valid or nearly.
var fuzzTexts = []string{
	"", " ", "\t\n", "plain text", "48900", "1", "0042", "12345", "-1", "x", "HX_1", "high", "HIGH", "low ",
	`Reply <START> & "go" \ back\slash /`, "\u2028\u2029 \u2027\u202a", "a\x00b\x01\x08\x09\x0a\x0b\x0c\x0d\x0e\x1b\x1f\x20",
	"\x7f\u0080\u0085\u009f\u00a0", "\xff", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x80", "\ufffd",
	"é ह 😀 \U0010ffff", "line\r\nbreak", "https://www.example.com/videos", "HTTPS://Example.com:8080/a?b=c#d",
	"http://[::1]:80/x", "https://exa mple.com", "ftp://x", "https:///path", "https://%zz", "//example.com",
	"8346a250-d7a9-47dc-8202-a8b1c2d3e4e8", "8346A250-D7A9-47DC-8202-A8B1C2D3E4E8", "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8\n",
	"8346a250d-7a9-47dc-8202-a8b1c2d3e4e8", "8346a250-d7a9-47dc-8202-a8b1c2d3e4e", "8346a250-d7a9-47dc-8202-a8b1c2d3e4eg",
	"g346a250-d7a9-47dc-8202-a8b1c2d3e4e8", "a-1._:@Z", "_a", ".a", "a b", "a/b", "5f5497d52b9aab4dbef6eeba0ce91f55",
	strings.Repeat("x", MaxIDLen+1), strings.Repeat("é", MaxTextLen+1), strings.Repeat("x", MaxURILen),
}

// longText is the bit of fuzzJob's shape that makes text a long enough for
// the length checks.
const longText = 1 << 14

// fuzzJob builds a job from three texts and a list: each text is some
// fields, the list (split at commas) is URIs or regions ("region;id"), and
// the bits of shape pick which optional fields there are, nil and empty
// lists included, and whether text a is long (longText).
func fuzzJob(a, b, c, list string, shape uint16) Job {
	if shape&longText != 0 && a != "" {
		a = strings.Repeat(a, 12000/len(a)+1)
	}
	items := strings.Split(list, ",")
	// pick returns a nil or empty list, the items, or {s}.
	pick := func(bits uint16, s string) []string {
		switch bits & 3 {
		case 0:
			return nil
		case 1:
			return []string{}
		case 2:
			return items
		}
		return []string{s}
	}
	j := Job{
		Launch: Launch{
			AgentAccessInstructions: b + c,
			AgentNo:                 c,
			InteractionsDescription: c,
			OptinDescription:        a,
			OptoutDescription:       a + b,
			TriggerDescription:      b,
			VideoURIs:               pick(shape>>5, a),
			ScreenshotURIs:          pick(shape>>7, b),
		},
	}
	if shape&1 != 0 {
		j.ID = a
	}
	if shape&2 != 0 {
		j.SID = b
	}
	if shape&4 != 0 {
		j.Priority = Priority(c)
	}
	if shape&8 != 0 {
		j.Launch.LaunchType = b
	}
	if shape&16 != 0 {
		j.Launch.LaunchName, j.Launch.ProviderLaunchID = c, a
	}
	switch shape >> 9 & 3 {
	case 1:
		j.Regions = []Region{}
	case 2:
		for _, it := range items {
			region, id, _ := strings.Cut(it, ";")
			j.Regions = append(j.Regions, Region{Region: region, RegionID: id})
		}
	case 3:
		j.Regions = []Region{{Region: a, RegionID: b}, {Region: c}}
	}
	return j
}

// addFuzzSeeds adds every text of fuzzTexts in each role, with shapes that
// set every field, and a few jobs of long text (slow, so only a few).
func addFuzzSeeds(f *testing.F) {
	for i, s := range fuzzTexts {
		t := fuzzTexts[(i+1)%len(fuzzTexts)]
		f.Add(s, t, "c", s+","+t+";"+s, uint16(0x7fff&^longText))
		f.Add("a", s, t, "https://example.com/"+s+",r;"+s, uint16(i*0x1357)&^longText)
		f.Add(t, "b", s, s, uint16(0xffff&^longText))
	}
	for _, s := range []string{"x", "é\u2028", "\x01", "\xff"} {
		f.Add(s, "b", "c", "https://example.com/", uint16(0xffff))
	}
	f.Add("", "", "", "", uint16(0))
	// Too many URIs and regions.
	f.Add("a", "b", "c", strings.Repeat("https://example.com/x,", MaxRegions), uint16(2<<5|2<<7|2<<9))
}

func FuzzBodyMatchesOld(f *testing.F) {
	addFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, a, b, c, list string, shape uint16) {
		j := fuzzJob(a, b, c, list, shape)
		if got, want := j.Body(), oldBody(j); !bytes.Equal(got, want) {
			t.Fatalf("Body() of %#v =\n%q\nwant, as before,\n%q", j, got, want)
		}
	})
}

func FuzzValidateMatchesOld(f *testing.F) {
	addFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, a, b, c, list string, shape uint16) {
		j := fuzzJob(a, b, c, list, shape)
		if got, want := j.Validate(), oldValidate(j); !sameError(got, want) {
			t.Fatalf("Validate() of %#v =\n%v\nwant, as before,\n%v", j, got, want)
		}
		for _, id := range []string{a, b, c, list} {
			if got, want := ValidateID(id), oldValidateID(id); !sameError(got, want) {
				t.Fatalf("ValidateID(%q) = %v, want, as before, %v", id, got, want)
			}
		}
	})
}

// TestSameAsOldEveryField sets every field of a job, through reflection,
// so that a field added to Job, Launch or Region and left out of Body is
// caught here.
func TestSameAsOldEveryField(t *testing.T) {
	var fill func(v reflect.Value, text string)
	fill = func(v reflect.Value, text string) {
		switch v.Kind() {
		case reflect.String:
			v.SetString(text + " <&> \u2028 \"q\" \\ \x01 \xff " + v.Type().Name())
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
			for i := range v.Len() {
				fill(v.Index(i), text+strconv.Itoa(i))
			}
		case reflect.Struct:
			for i := range v.NumField() {
				fill(v.Field(i), text+v.Type().Field(i).Name)
			}
		default:
			t.Fatalf("fill: a field of kind %s", v.Kind())
		}
	}
	var j Job
	fill(reflect.ValueOf(&j).Elem(), "")
	CheckSameAsOld(t, j)
}

// TestSameAsOldCorpus checks the jobs of the FuzzParse corpus, read by
// encoding/json however much Parse would refuse them, and the seeds of the
// fuzz targets above.
func TestSameAsOldCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		// go test fuzz v1, then []byte("...").
		_, arg, _ := strings.Cut(string(data), "\n")
		arg = strings.TrimSpace(arg)
		if !strings.HasPrefix(arg, "[]byte(") {
			continue
		}
		raw, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(arg, "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var j Job
		if err := json.Unmarshal([]byte(raw), &j); err != nil {
			continue
		}
		CheckSameAsOld(t, j)
	}
	for i, s := range fuzzTexts {
		for k := range 32 {
			u := fuzzTexts[(i+k)%len(fuzzTexts)]
			shape := uint16(k*0x2f5) & (1<<11 - 1)
			if k%16 == 15 { // only a few, as long text is slow to check
				shape |= longText
			}
			CheckSameAsOld(t, fuzzJob(s, u, s+u, u+","+s+";"+u, shape))
		}
	}
}

// benchJobs are the jobs of the comparison benchmarks: the sample of
// Kaleyra's documentation, the same with the ID every job has when the
// worker runs it, and one with text to escape.
func benchJobs(b *testing.B) []struct {
	name string
	job  Job
} {
	j, err := Parse([]byte(`{"launch":{"optin_description":"Bigbasket Optin","trigger_description":"START",` +
		`"interactions_description":"Demo Messages","optout_description":"Stop",` +
		`"agent_access_instructions":"This is a demo account","provider_launch_id":"launch_001_google_rcs",` +
		`"launch_name":"launch_48900","launch_type":"1","video_uris":["https://www.example.com/videos"],` +
		`"screenshot_uris":["https://www.example.com/uris"],"agent_no":"48900"},` +
		`"regions":[{"region_id":"8346a250-d7a9-47dc-8202-a8b1c2d3e4e8","region":"4f4bf2b0-5110-44e1-9aa1-43392c7d3b17"}]}`))
	if err != nil {
		b.Fatal(err)
	}
	withID := j
	withID.ID = IDFor("SID1", j)
	escapes := j
	escapes.Launch.OptinDescription = "Reply \"START\" <here> & get:\n\t– offers\n\t– updates\u2028(stop any time)"
	return []struct {
		name string
		job  Job
	}{{"sample", j}, {"worker", withID}, {"escapes", escapes}}
}

func BenchmarkCompareBody(b *testing.B) {
	for _, bj := range benchJobs(b) {
		j := bj.job
		b.Run(bj.name+"/old", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = oldBody(j)
			}
		})
		b.Run(bj.name+"/new", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = j.Body()
			}
		})
	}
}

func BenchmarkCompareValidate(b *testing.B) {
	for _, bj := range benchJobs(b) {
		j := bj.job
		b.Run(bj.name+"/old", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := oldValidate(j); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bj.name+"/new", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := j.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
