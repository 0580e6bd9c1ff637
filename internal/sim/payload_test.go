package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"
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
		matchesOld(t, b)
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

// FuzzAnswerMatchesOld: whatever the body, the launch handler answers it as
// it did with encoding/json's reflection (old_test.go): parsePayload gives
// the same payload, success the same bytes, and the handler the same status,
// headers and body for every step a valid request can get a success body
// with.
func FuzzAnswerMatchesOld(f *testing.F) {
	valid := body("+15550001111")
	f.Add(valid)
	var indented bytes.Buffer
	json.Indent(&indented, valid, "\r\n", "\t ")
	f.Add(indented.Bytes())
	for _, b := range missingFieldBodies() {
		f.Add([]byte(b))
	}
	for _, b := range invalidFieldBodies {
		f.Add([]byte(b))
	}
	for _, lt := range []string{`,"launch_type":"3"`, `,"launch_type":7`, `,"launch_type":""`, `,"launch_type":null`, ``} {
		f.Add([]byte(`{"launch":{"optin_description":"a","trigger_description":"b","interactions_description":"c",` +
			`"optout_description":"d","agent_access_instructions":"e","agent_no":"1","provider_launch_id":null` + lt + `}}`))
	}
	const required = `"optin_description":"a","trigger_description":"b","interactions_description":"c","optout_description":"d","agent_access_instructions":"e"`
	for _, b := range []string{
		`{"launch":{"agent_no":"1",}}`,
		`{}`,
		`{"launch":{"agent_no":"A"}}`,
		// Names spelled with escapes, repeated, or in another case.
		`{"la\u0075nch":{` + required + `,"agent_no":"\u0031","launch_n\u0061me":"x"}}`,
		`{"launch":{` + required + `},"launch":{` + required + `,"agent_no":"2"},"regions":[],"regions":[{"region":"r"}]}`,
		`{"Launch":{` + required + `,"agent_no":"1"}}`,
		`{"launch":{` + required + `,"agent_no":"1","Launch_Name":"x","launch_name":"y","launch_name":"z"}}`,
		// Echoed values with white space, HTML, U+2028, escapes, invalid UTF-8.
		"{\"launch\": {\"optin_description\": \" <a&b> \u2028\", \"trigger_description\":\"\\u003c\\ud800\\\"\",\r\n" +
			"\t\"interactions_description\" : \"\xff\xfe\", \"optout_description\":\"d\",\"agent_access_instructions\":\"e\",\"agent_no\":\"1\"," +
			"\"video_uris\": [ \"a b\" , {\"c\" : [ 1e400, true, null ] } ], \"screenshot_uris\":{ }, \"launch_name\": 12.50 ," +
			"\"provider_launch_id\" : false }, \"regions\" : [ { \"region_id\" : [ ], \"region\" : \" r \" } ] }",
		"{\"launch\":{" + required + ",\"agent_no\":\"1\",\"video_uris\":{\"\u2029k\u2026\":[\"\xe2\x80\xe2\x80\xa8\",\"\xe2\x80\"]}}," +
			"\"regions\":[{\"region\":\"r\u2028\",\"region_id\":\"\u2029\"}]}",
		// Regions as encoding/json takes them, or not.
		`{"launch":{` + required + `,"agent_no":"1"},"regions":[{"region":"r","region_id":null},{"region":"s","region_id":" x "}]}`,
		`{"launch":{` + required + `,"agent_no":"1"},"regions":[{"region":"r"},5,{"region":"s"}]}`,
		`{"launch":{` + required + `,"agent_no":"1"},"regions":[{"region":"r"},[],null]}`,
		`{"launch":{` + required + `,"agent_no":"1"},"regions":[null]}`,
		`{"launch":{` + required + `,"agent_no":"1"},"regions":"r"}`,
		`{"launch":{` + required + `,"agent_no":1,"launch_type":"-1"}}`,
		`{"launch":{` + required + `,"agent_no":null,"launch_type":"2147483648"}}`,
		`{"launch":{` + required + `,"launch_type":true}}`,
		` [{"launch":{}}] `,
	} {
		f.Add([]byte(b))
	}
	// Echoed values as deep as a valid body can nest them, and one level
	// less: in the answer they are a level deeper.
	for _, n := range []int{maxDepth - 2, maxDepth - 3} {
		deep := strings.Repeat("[", n) + strings.Repeat("]", n)
		f.Add([]byte(`{"launch":{` + required + `,"agent_no":"1","video_uris":` + deep + `}}`))
		f.Add([]byte(`{"launch":{` + required + `,"agent_no":"1"},"regions":[{"region":"r","region_id":` + deep[1:len(deep)-1] + `}]}`))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		matchesOld(t, b)
		// A request refused is refused whatever the script.
		steps := []Step{StepSucceed}
		if p := parsePayload(b); p.jsonProblem == "" && p.problem == "" {
			steps = append(steps, StepNoLaunchID, StepCodeNotString, StepTruncated)
		}
		for _, st := range steps {
			sameAnswer(t, b, st)
		}
	})
}

// matchesOld fails unless parsePayload decodes b as oldParsePayload did,
// partial results included, and, when b is a valid request, success answers
// it with the bytes the old encoding wrote.
func matchesOld(t *testing.T, b []byte) {
	t.Helper()
	p, want := parsePayload(b), oldParsePayload(b)
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("%q:\nparsePayload    %#v\noldParsePayload %#v", b, p, want)
	}
	if p.jsonProblem != "" || p.problem != "" {
		return
	}
	p.launchID = "8c0f7a1e-3b2d-4c5e-9f60-718293a4b5c6"
	// Another zone than UTC, which the dates are written in.
	now := time.Date(2026, time.January, 12, 18, 12, 58, 999, time.FixedZone("IST", 5*3600+1800))
	for _, st := range []Step{StepSucceed, StepNoLaunchID, StepCodeNotString} {
		old := oldSuccess(&p, st)
		old.Data.Launch.CreateDate = now.UTC().Format(dateLayout)
		old.Data.Launch.ModifiedDate = old.Data.Launch.CreateDate
		if got, want := success(&p, st, now), marshal(old); !bytes.Equal(got, want) {
			t.Fatalf("%q, %s:\nsuccess %s\nold     %s", b, st, got, want)
		}
	}
}

// sameAnswer fails unless serveLaunch answers b, scripted to answer a
// valid request with st, exactly as oldServeLaunch did. Both issue the same
// agent_launch_id, from the same random bytes, and are retried until they
// answer within the same second, so that the dates are the same too.
func sameAnswer(t *testing.T, b []byte, st Step) {
	t.Helper()
	for try := 1; ; try++ {
		at := time.Now().Unix()
		cryptotest.SetGlobalRandom(t, 1)
		got := answerTo(b, st, (*Server).serveLaunch)
		cryptotest.SetGlobalRandom(t, 1)
		want := answerTo(b, st, (*Server).oldServeLaunch)
		if time.Now().Unix() != at && try < 3 {
			continue
		}
		if got.Code != want.Code || !reflect.DeepEqual(got.Header(), want.Header()) || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
			t.Fatalf("%q, %s:\nserveLaunch    %d %v %s\noldServeLaunch %d %v %s",
				b, st, got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
		}
		return
	}
}

// answerTo is the answer of serve, on a new simulator scripted with st, to
// a launch request with body b.
func answerTo(b []byte, st Step, serve func(*Server, http.ResponseWriter, *http.Request)) *httptest.ResponseRecorder {
	s := New(Config{APIKey: testKey})
	s.ScriptSID(testSID, st)
	w := httptest.NewRecorder()
	serve(s, w, launchRequest(b))
	return w
}

// launchRequest is a launch request with body b, for calling the launch
// handler directly.
func launchRequest(b []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/"+testSID+"/rcs/agent/launch", bytes.NewReader(b))
	r.SetPathValue("sid", testSID)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("api-key", testKey)
	return r
}

func TestNewUUIDMatchesOld(t *testing.T) {
	for seed := range uint64(1000) {
		cryptotest.SetGlobalRandom(t, seed)
		got := newUUID()
		cryptotest.SetGlobalRandom(t, seed)
		if want := oldNewUUID(); got != want {
			t.Fatalf("seed %d: newUUID %s, oldNewUUID %s", seed, got, want)
		}
	}
}

// BenchmarkParsePayload decodes a valid launch body, as every call does,
// with the code of old_test.go and with today's.
func BenchmarkParsePayload(b *testing.B) {
	body := body("+15550001111")
	for _, bc := range []struct {
		name  string
		parse func([]byte) payload
	}{{"old", oldParsePayload}, {"new", parsePayload}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if p := bc.parse(body); p.jsonProblem != "" || p.problem != "" {
					b.Fatal(p.jsonProblem, p.problem)
				}
			}
		})
	}
}

// BenchmarkAnswerSuccess encodes the RCS902 answer to a valid launch body,
// with the code of old_test.go and with today's.
func BenchmarkAnswerSuccess(b *testing.B) {
	p := parsePayload(body("+15550001111"))
	p.launchID = newUUID()
	for _, bc := range []struct {
		name   string
		encode func(*payload) []byte
	}{
		{"old", func(p *payload) []byte { return marshal(oldSuccess(p, StepSucceed)) }},
		{"new", func(p *payload) []byte { return success(p, StepSucceed, time.Now()) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				bc.encode(&p)
			}
		})
	}
}

// BenchmarkServeLaunchSuccess answers a valid launch request with RCS902,
// the whole handler, with the code of old_test.go and with today's.
func BenchmarkServeLaunchSuccess(b *testing.B) {
	body := body("+15550001111")
	for _, bc := range []struct {
		name  string
		serve func(*Server, http.ResponseWriter, *http.Request)
	}{{"old", (*Server).oldServeLaunch}, {"new", (*Server).serveLaunch}} {
		b.Run(bc.name, func(b *testing.B) {
			s := New(Config{APIKey: testKey})
			r := launchRequest(body)
			var rd bytes.Reader
			for b.Loop() {
				rd.Reset(body)
				r.Body = io.NopCloser(&rd)
				w := httptest.NewRecorder()
				bc.serve(s, w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
