package kaleyra_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
	"github.com/rcslaunch/rcslaunch/internal/secret/secrettest"
)

// FuzzParseResponse checks the invariants every classification keeps,
// whatever a server sends. retryAfter is used as both the Retry-After and
// the Location header.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, sampleDocSuccess},
		{200, sampleSuccess},
		{400, sampleRCS904},
		{400, sampleRCS701},
		{400, sampleRCS601},
		{405, sampleRCS405},
		{500, sampleRCS502},
		{500, sampleRCS500},
		{429, ""},
		{302, "<html>moved</html>"},
		{200, `{"code":"RCS902","data":[]}`},
		{400, `{"code":7}`},
	} {
		f.Add(s.status, "", []byte(s.body))
	}
	f.Add(429, "120", []byte(`{"code":"RCS429"}`))
	f.Add(429, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(nil))
	retry := map[string]bool{"RCS502": true}
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		header := http.Header{}
		header.Set("Retry-After", retryAfter)
		header.Set("Location", retryAfter)
		orig := bytes.Clone(body)
		out := kaleyra.ParseResponse(status, header, body, retry)

		if out.Class < kaleyra.Succeeded || out.Class > kaleyra.Throttled {
			t.Fatalf("Class = %v", out.Class)
		}
		if out.Class == kaleyra.Succeeded && (out.AgentLaunchID == "" || out.Code != "RCS902") {
			t.Fatalf("Succeeded with Code %q, AgentLaunchID %q", out.Code, out.AgentLaunchID)
		}
		if out.Class != kaleyra.Succeeded && out.AgentLaunchID != "" {
			t.Fatalf("%v with AgentLaunchID %q", out.Class, out.AgentLaunchID)
		}
		if (out.Class == kaleyra.Throttled) != (status == http.StatusTooManyRequests) {
			t.Fatalf("Class %v for HTTP %d", out.Class, status)
		}
		if out.Class == kaleyra.Retryable && !retry[out.Code] {
			t.Fatalf("Retryable with Code %q", out.Code)
		}
		if out.Uncertain && out.Class != kaleyra.Terminal {
			t.Fatalf("Uncertain %v", out.Class)
		}
		if out.Code == "" || len(out.Code) > 64 || len(out.ErrorCode) > 64 {
			t.Fatalf("Code %q, ErrorCode %q", out.Code, out.ErrorCode)
		}
		if len(out.Message) > 1024 || !utf8.ValidString(out.Message) || (out.Message == "" && out.Class != kaleyra.Succeeded) {
			t.Fatalf("Message = %q", out.Message)
		}
		if out.Raw != nil && (!json.Valid(out.Raw) || !bytes.Equal(out.Raw, body)) {
			t.Fatalf("Raw = %q is not the body", out.Raw)
		}
		if out.RetryAfter < 0 || out.RetryAfter > 24*time.Hour {
			t.Fatalf("RetryAfter = %v", out.RetryAfter)
		}
		if out.HTTPStatus != status || out.Duration != 0 {
			t.Fatalf("HTTPStatus %d, Duration %v", out.HTTPStatus, out.Duration)
		}
		if !bytes.Equal(body, orig) {
			t.Fatalf("ParseResponse changed its input")
		}
	})
}

// FuzzParseLaunchStatus checks that reading a status answer never panics
// and always ends in one of the five launch states or a failed poll with
// its cause. retryAfter is used as both the Retry-After and the Location
// header. The committed corpus holds the answer shapes the parser looks
// for, HTML, an empty body, invalid UTF-8 and a body over 1 MiB.
func FuzzParseLaunchStatus(f *testing.F) {
	f.Add(200, "", []byte(`{"data":{"launch_status":"PENDING"}}`))
	f.Add(200, "", []byte(`{"status":"success","data":{"launch":{"state":"approved"}}}`))
	f.Add(500, "", []byte(sampleRCS502))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		header := http.Header{}
		header.Set("Retry-After", retryAfter)
		header.Set("Location", retryAfter)
		orig := bytes.Clone(body)
		out := kaleyra.ParseLaunchStatus(status, header, body)

		switch out.Class {
		case kaleyra.Succeeded:
			if !out.State.Valid() {
				t.Fatalf("Succeeded with State %q", out.State)
			}
		case kaleyra.Retryable, kaleyra.Throttled:
			if out.State != "" || out.Code == "" || out.Message == "" {
				t.Fatalf("failed poll %v with State %q, Code %q, Message %q", out.Class, out.State, out.Code, out.Message)
			}
		default:
			t.Fatalf("Class = %v", out.Class)
		}
		if (out.Class == kaleyra.Throttled) != (status == http.StatusTooManyRequests) {
			t.Fatalf("Class %v for HTTP %d", out.Class, status)
		}
		if out.Class == kaleyra.Succeeded && status/100 != 2 {
			t.Fatalf("a state from HTTP %d", status)
		}
		if len(out.Message) > 1024 || !utf8.ValidString(out.Message) || strings.ContainsAny(out.Message, "\r\n") {
			t.Fatalf("Message = %q", out.Message)
		}
		if len(out.Reported) > 64 || !utf8.ValidString(out.Reported) || len(out.Code) > 64 {
			t.Fatalf("Reported %q, Code %q", out.Reported, out.Code)
		}
		if out.Raw != nil && (!json.Valid(out.Raw) || !bytes.Equal(out.Raw, body)) {
			t.Fatalf("Raw = %q is not the body", out.Raw)
		}
		if out.RetryAfter < 0 || out.RetryAfter > 24*time.Hour || out.HTTPStatus != status || out.Duration != 0 {
			t.Fatalf("RetryAfter %v, HTTPStatus %d, Duration %v", out.RetryAfter, out.HTTPStatus, out.Duration)
		}
		if !bytes.Equal(body, orig) {
			t.Fatalf("ParseLaunchStatus changed its input")
		}
	})
}

// canned answers every request with one answer, so that a fuzz target can
// run the whole client, redaction included, without a network.
type canned struct {
	status int
	header http.Header
	body   []byte
}

func (a canned) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: a.status, ProtoMajor: 1, Header: a.header.Clone(), Request: r,
		Body: io.NopCloser(bytes.NewReader(a.body)), ContentLength: int64(len(a.body)),
	}, nil
}

// FuzzEchoedKey checks that an answer that echoes the API key, spelled as
// secrettest.Spell spells it with mask (in other cases, escaped, percent-
// encoded, in any mix) between any prefix and suffix, and in the Location
// header too when inLocation is set, never gets the key into a launch or
// launch status outcome: not its Raw (bytes or decoded strings), Code,
// Message, ErrorCode, AgentLaunchID or Reported; and that Raw stays JSON.
func FuzzEchoedKey(f *testing.F) {
	f.Add(400, `{"code":"RCS904","message":"bad key `, `","data":[]}`, uint64(0x2222222222222222), false)
	f.Add(200, `{"code":"RCS902","data":{"launch":{"agent_launch_id":"`, `"}}}`, uint64(0x1111111111111111), false)
	f.Add(200, `{"data":{"status":"`, `"}}`, uint64(0xaaaaaaaaaaaaaaaa), false)
	f.Add(200, `{"`, `":{"launch_status":"LAUNCHED"}}`, uint64(0xffffffffffffffff), false)
	f.Add(400, `{"code":"`, `"}`, uint64(0x9e3779b97f4a7c15), false)
	f.Add(400, `{"error":{"error_message":"{\"message\":\"`, `\"}"}}`, uint64(0x2222222222222222), false)
	f.Add(500, "<pre>api-key: ", "</pre>", uint64(0x5555555555555555), false)
	f.Add(302, "", "", uint64(0xc3c3c3c3c3c3c3c3), true)
	f.Add(429, "slow down, ", "", uint64(0), true)
	f.Add(200, `["\`, `"]`, uint64(0x2222222222222222), false)
	f.Fuzz(func(t *testing.T, status int, prefix, suffix string, mask uint64, inLocation bool) {
		status = 200 + int(uint(status)%400)
		echo := secrettest.Spell(testKey, mask)
		answer := canned{status: status, header: http.Header{}, body: []byte(prefix + echo + suffix)}
		if inLocation {
			answer.header.Set("Location", "https://evil.example/?k="+echo)
		}
		c, err := kaleyra.New(kaleyra.Options{BaseURL: "https://rcs-api.in.kaleyra.io", SID: testSID, APIKey: testKey,
			HTTPClient: &http.Client{Transport: answer}})
		if err != nil {
			t.Fatal(err)
		}
		out := c.Launch(context.Background(), []byte(`{}`))
		if holdsKey(out.Raw, out.Code, out.Message, out.ErrorCode, out.AgentLaunchID) {
			t.Fatalf("the key leaked from HTTP %d %q: %+v\nRaw: %s", status, answer.body, out, out.Raw)
		}
		if out.Raw != nil && !json.Valid(out.Raw) {
			t.Fatalf("Raw is not JSON: %q", out.Raw)
		}
		st := c.LaunchStatus(context.Background(), testAgent, testLaunchID)
		if holdsKey(st.Raw, st.Code, st.Message, st.Reported) {
			t.Fatalf("the key leaked from HTTP %d %q: %+v\nRaw: %s", status, answer.body, st, st.Raw)
		}
		if st.Raw != nil && !json.Valid(st.Raw) {
			t.Fatalf("Raw is not JSON: %q", st.Raw)
		}
	})
}

// fixedDate is the Date of fuzzed answers, so that a Retry-After date is
// measured from it rather than from the clock, which would tell two
// classifications of one answer apart.
const fixedDate = "Wed, 21 Oct 2015 07:28:00 GMT"

// FuzzParseResponseMatchesOld checks that ParseResponse, which checks an
// answer with json.Valid and then reads what it needs from it, classifies
// any answer as it did when it decoded it with json.Unmarshal, and data and
// error again. retryAfter is used as both the Retry-After and the Location
// header.
func FuzzParseResponseMatchesOld(f *testing.F) {
	for _, tc := range responseCases {
		f.Add(tc.status, tc.header["Retry-After"], []byte(tc.body))
	}
	for _, body := range envelopeCases {
		f.Add(200, "", []byte(body))
	}
	for _, data := range readerCases {
		f.Add(200, "", []byte(`{"code":"RCS902","data":`+cmp.Or(data, "null")+`,"error":`+cmp.Or(data, "{}")+`}`))
		f.Add(429, "1", []byte(`{"error":`+cmp.Or(data, "null")+`}`))
	}
	retry := map[string]bool{"RCS502": true}
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		header := http.Header{"Retry-After": {retryAfter}, "Location": {retryAfter}, "Date": {fixedDate}}
		got := kaleyra.ParseResponse(status, header, body, retry)
		want := kaleyra.OldParseResponse(status, header, body, retry)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("HTTP %d %q:\ngot  %+v\nwant %+v", status, body, got, want)
		}
	})
}

// FuzzReadersMatchOld checks launchID and errorDetail, which read valid
// JSON, against the decoding they replace.
func FuzzReadersMatchOld(f *testing.F) {
	for _, raw := range readerCases {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 0 && !json.Valid(raw) {
			return
		}
		checkReaders(t, raw)
	})
}

// FuzzAnswerMatchesOld checks that what a Client makes of an answer (scrub,
// classify, redact) is what it made before scrub passed over the answers
// it finds clean, for any key and any answer: one that holds the key spelled
// by secrettest.Spell with mask between prefix and suffix, when spelled is
// set, or else just prefix and suffix; the Location header is location. It
// checks too that when scrub finds an answer clean, the redaction it skips
// would have left the answer as it is.
func FuzzAnswerMatchesOld(f *testing.F) {
	f.Add(testKey, 200, sampleSuccess, "", uint64(0), false, "")
	f.Add(testKey, 200, sampleSuccess[:100], sampleSuccess[100:], uint64(0), true, "")
	f.Add(testKey, 200, sampleSuccess[:100], sampleSuccess[100:], uint64(0x1111111111111111)|1<<63, true, "")
	f.Add(testKey, 400, `{"code":"RCS904","message":"bad key `, `","data":[]}`, uint64(0x2222222222222222), true, "")
	f.Add(testKey, 400, sampleRCS904, "", uint64(0), false, "")
	f.Add(testKey, 302, "", "", uint64(0xc3c3c3c3c3c3c3c3), true, "https://evil.example/?k="+testKey)
	f.Add(testKey, 429, "slow down, ", "", uint64(0x5555555555555555), true, "")
	f.Add(testKey, 200, `{"data":{"launch_status":"PENDING"},"`, `":1}`, uint64(0), true, "")
	f.Add(testKey, 200, `{"code":"RCS902","n":`, `}`, uint64(0), true, "")
	f.Add("", 200, sampleSuccess, "", uint64(0), false, "")
	f.Add("12345", 200, `{"code":"RCS902","n":`, `}`, uint64(0), true, "")
	f.Add("k\ufffdy", 200, "{\"code\":\"RCS902\",\"m\":\"k\xffy\"}", "", uint64(0), false, "")
	f.Add(`\n`, 200, "{\"code\":\"RCS902\",\"m\":\"\n\"}", "", uint64(0), false, "")
	f.Add("50%", 200, `{"code":"RCS902","m":"`, `"}`, uint64(0), true, "")
	// Clean answers whose outcome spells the key: in the message made of
	// them, and in an error code escaped for printing.
	f.Add("RCS904 without", 400, `{"code":"RCS904"}`, "", uint64(0), false, "")
	f.Add(`\u202e`, 400, "{\"code\":\"RCS904\",\"error\":{\"error_code\":\"\u202e\"}}", "", uint64(0), false, "")
	f.Fuzz(func(t *testing.T, key string, status int, prefix, suffix string, mask uint64, spelled bool, location string) {
		status = 200 + int(uint(status)%400)
		body := prefix + suffix
		if spelled {
			body = prefix + secrettest.Spell(key, mask) + suffix
		}
		c := kaleyra.KeyClient(key)
		header := http.Header{"Location": {location}, "Date": {fixedDate}}

		got, clean, slow := c.Scrub([]byte(body))
		if !bytes.Equal(got, slow) || clean && string(slow) != body {
			t.Fatalf("key %q, answer %q: scrub = %q (clean %v), without its fast path %q", key, body, got, clean, slow)
		}
		if out, want := c.Answer(status, header, []byte(body)), c.OldAnswer(status, header, []byte(body)); !reflect.DeepEqual(out, want) {
			t.Fatalf("key %q, HTTP %d %q:\ngot  %+v\nwant %+v", key, status, body, out, want)
		}
		if out, want := c.StatusAnswer(status, header, []byte(body)), c.OldStatusAnswer(status, header, []byte(body)); !reflect.DeepEqual(out, want) {
			t.Fatalf("key %q, HTTP %d %q, launch status:\ngot  %+v\nwant %+v", key, status, body, out, want)
		}
	})
}
