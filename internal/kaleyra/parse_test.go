package kaleyra_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
)

// responseCase is one answer from Kaleyra (or something posing as it) and
// what it must be classified as. The same cases run through ParseResponse
// and, served by a test server, through Client.Launch.
type responseCase struct {
	name   string
	status int
	header map[string]string
	body   string
	retry  []string // nil: the default, RCS502

	class         kaleyra.Class
	code          string
	errorCode     string
	agentLaunchID string
	uncertain     bool
	retryAfter    time.Duration
	raw           bool     // Raw must be the body
	message       string   // exact Message, when not empty
	contains      []string // substrings of Message
}

var responseCases = []responseCase{
	{
		name: "doc success sample is invalid JSON", status: 200, body: sampleDocSuccess,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, uncertain: true,
		contains: []string{"not valid JSON", "HTTP 200", `{\n"code": "RCS902"`},
	},
	{
		name: "success", status: 200, body: sampleSuccess,
		class: kaleyra.Succeeded, code: "RCS902", agentLaunchID: "1370ed9d-53ed-47ec-b150-e2XXXXXXXX3d", raw: true,
		message: "Agent launch request created successfully",
	},
	{
		name: "success with HTTP 201", status: 201,
		body:  `{"code":"RCS902","message":"ok","data":{"launch":{"agent_launch_id":"abc-1"}},"error":{}}`,
		class: kaleyra.Succeeded, code: "RCS902", agentLaunchID: "abc-1", raw: true,
	},
	{
		name: "RCS904 missing required fields", status: 400, body: sampleRCS904,
		class: kaleyra.Terminal, code: "RCS904", errorCode: "PROV_ERROR", raw: true,
		message: "Failed to create Agent launch request: Missing required fields in launch payload",
	},
	{
		name: "RCS701 invalid JSON", status: 400, body: sampleRCS701,
		class: kaleyra.Terminal, code: "RCS701", errorCode: "INVALID_JSON_PAYLOAD", raw: true,
		message: "Invalid json format passed: invalid character '}' looking for beginning of object key string",
	},
	{
		name: "RCS601 not enabled", status: 400, body: sampleRCS601,
		class: kaleyra.Terminal, code: "RCS601", errorCode: "RCS_CHANNEL_DISABLED", raw: true,
		message: "RCS Channel is not enabled for this User",
	},
	{
		name: "RCS405 method not allowed", status: 405, body: sampleRCS405,
		class: kaleyra.Terminal, code: "RCS405", errorCode: "METHOD_NOT_ALLOWED", raw: true,
		message: "Method not allowed",
	},
	{
		name: "RCS502 gateway error", status: 500, body: sampleRCS502,
		class: kaleyra.Retryable, code: "RCS502", errorCode: "RCS_CHANNEL_INTERNAL_ERROR", raw: true,
		message: "Internal Gateway Error",
	},
	{
		name: "RCS500 same HTTP status, terminal", status: 500, body: sampleRCS500,
		class: kaleyra.Terminal, code: "RCS500", errorCode: "INTERNAL_SERVER_ERROR", raw: true,
		message: "Internal server error.",
	},
	{
		name: "RCS500 retryable when configured", status: 500, body: sampleRCS500, retry: []string{"RCS500"},
		class: kaleyra.Retryable, code: "RCS500", errorCode: "INTERNAL_SERVER_ERROR", raw: true,
	},
	{
		name: "RCS502 terminal when not configured", status: 500, body: sampleRCS502, retry: []string{"RCS500"},
		class: kaleyra.Terminal, code: "RCS502", raw: true, errorCode: "RCS_CHANNEL_INTERNAL_ERROR",
	},
	{
		name: "RCS502 retryable among several", status: 500, body: sampleRCS502, retry: []string{"RCS500", "RCS502"},
		class: kaleyra.Retryable, code: "RCS502", raw: true, errorCode: "RCS_CHANNEL_INTERNAL_ERROR",
	},
	{
		name: "unknown code", status: 200, body: `{"code":"RCS999","message":"Something new","data":[],"error":{}}`,
		class: kaleyra.Terminal, code: "RCS999", raw: true, message: "Something new",
	},
	{
		name: "error detail without message", status: 400,
		body:  `{"code":"RCS904","data":[],"error":{"error_code":"X","error_message":"only detail"}}`,
		class: kaleyra.Terminal, code: "RCS904", errorCode: "X", raw: true, message: "only detail",
	},
	{
		name: "429 with Retry-After seconds", status: 429, header: map[string]string{"Retry-After": "7"},
		body:  "Too Many Requests",
		class: kaleyra.Throttled, code: kaleyra.CodeThrottled, retryAfter: 7 * time.Second,
		contains: []string{"HTTP 429", "Too Many Requests", "retry after 7s"},
	},
	{
		name: "429 with Retry-After date", status: 429,
		header: map[string]string{"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT", "Date": "Wed, 21 Oct 2015 07:28:00 GMT"},
		class:  kaleyra.Throttled, code: kaleyra.CodeThrottled, retryAfter: 30 * time.Second,
	},
	{
		name: "429 with a huge Retry-After", status: 429, header: map[string]string{"Retry-After": "99999999999999999999"},
		class: kaleyra.Throttled, code: kaleyra.CodeThrottled, retryAfter: 24 * time.Hour,
	},
	{
		name: "429 capped Retry-After", status: 429, header: map[string]string{"Retry-After": "999999999"},
		class: kaleyra.Throttled, code: kaleyra.CodeThrottled, retryAfter: 24 * time.Hour,
	},
	{
		name: "429 with a past Retry-After date", status: 429,
		header: map[string]string{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT", "Date": "Wed, 21 Oct 2015 07:29:00 GMT"},
		class:  kaleyra.Throttled, code: kaleyra.CodeThrottled,
	},
	{
		name: "429 with negative Retry-After", status: 429, header: map[string]string{"Retry-After": "-5"},
		class: kaleyra.Throttled, code: kaleyra.CodeThrottled,
	},
	{
		name: "429 with garbage Retry-After", status: 429, header: map[string]string{"Retry-After": "soon"},
		class: kaleyra.Throttled, code: kaleyra.CodeThrottled,
	},
	{
		name: "429 without Retry-After, JSON body", status: 429,
		body:  `{"code":"RCS429","message":"Throttling","data":[],"error":{"error_code":"TOO_MANY","error_message":"slow down"}}`,
		class: kaleyra.Throttled, code: kaleyra.CodeThrottled, errorCode: "TOO_MANY", raw: true,
		message: "throttled by Kaleyra (HTTP 429): Throttling: slow down",
	},
	{
		name: "429 whatever the body says", status: 429, body: sampleSuccess,
		class: kaleyra.Throttled, code: kaleyra.CodeThrottled, raw: true,
	},
	{
		name: "code without a message", status: 400, body: `{"code":"RCS904","data":[],"error":{}}`,
		class: kaleyra.Terminal, code: "RCS904", raw: true, message: "RCS904 without a message (HTTP 400)",
	},
	{
		name: "HTML error page", status: 502, body: "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>",
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse,
		contains: []string{"not valid JSON", "HTTP 502", `<html>\n<head><title>502 Bad Gateway`},
	},
	{
		name: "HTML with 200 is uncertain", status: 200, body: "<html>OK</html>",
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, uncertain: true,
		contains: []string{"HTTP 200", "<html>OK</html>"},
	},
	{
		name: "long HTML page is cut", status: 503, body: "<html>" + strings.Repeat("é", 3000) + "</html>",
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, contains: []string{"…"},
	},
	{
		name: "empty body", status: 200, body: "",
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, uncertain: true, message: "empty body (HTTP 200)",
	},
	{
		name: "empty body with 500", status: 500, body: " \r\n",
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, message: "empty body (HTTP 500)",
	},
	{
		name: "truncated JSON", status: 200, body: sampleSuccess[:200],
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, uncertain: true, contains: []string{"not valid JSON"},
	},
	{
		name: "JSON with trailing garbage", status: 400, body: sampleRCS904 + "}",
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, contains: []string{"not valid JSON"},
	},
	{
		name: "JSON array", status: 400, body: `[1,2]`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, raw: true, contains: []string{"not a JSON object"},
	},
	{
		name: "JSON null", status: 400, body: `null`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, raw: true, contains: []string{"not a JSON object"},
	},
	{
		name: "no code", status: 400, body: `{"message":"hello"}`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, raw: true, contains: []string{`no "code"`, "HTTP 400", `{"message":"hello"}`},
	},
	{
		name: "code is a number", status: 400, body: `{"code":902,"message":"x"}`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, raw: true, contains: []string{`"code" is a number, not a string`},
	},
	{
		name: "code is null", status: 200, body: `{"code":null}`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, uncertain: true, raw: true, contains: []string{`"code" is null`},
	},
	{
		name: "code is empty", status: 400, body: `{"code":""}`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, raw: true, contains: []string{`"code" "" is not a Kaleyra code`},
	},
	{
		name: "code with control characters", status: 400, body: `{"code":"RCS\n904"}`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, raw: true, contains: []string{`"RCS\n904"`},
	},
	{
		name: "code posing as our pseudo-code", status: 400, body: `{"code":"TIMEOUT"}`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, raw: true,
	},
	{
		name: "success without agent_launch_id", status: 200,
		body:  `{"code":"RCS902","message":"Agent launch request created successfully","data":[],"error":{}}`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, uncertain: true, raw: true,
		contains: []string{"RCS902", "agent_launch_id", "Agent launch request created successfully"},
	},
	{
		name: "success without agent_launch_id, HTTP 500", status: 500,
		body:  `{"code":"RCS902","data":{"launch":{}}}`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, uncertain: true, raw: true,
	},
	{
		name: "success with numeric agent_launch_id", status: 200,
		body:  `{"code":"RCS902","data":{"launch":{"agent_launch_id":12}}}`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, uncertain: true, raw: true,
	},
	{
		name: "success with empty agent_launch_id", status: 200,
		body:  `{"code":"RCS902","data":{"launch":{"agent_launch_id":""}}}`,
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse, uncertain: true, raw: true,
	},
	{
		name: "redirect", status: 302, header: map[string]string{"Location": "https://evil.example/steal"},
		body:  "<a href=\"https://evil.example/steal\">Found</a>",
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse,
		contains: []string{"redirect", `"https://evil.example/steal"`, "HTTP 302"},
	},
	{
		name: "control characters are escaped", status: 500, body: "\x00\x1b[31mred\xff\u202e",
		class: kaleyra.Terminal, code: kaleyra.CodeBadResponse,
		contains: []string{`\u0000\u001b[31mred\xff\u202e`},
	},
}

func (tc responseCase) retrySet() map[string]bool {
	codes := tc.retry
	if codes == nil {
		codes = []string{"RCS502"}
	}
	m := make(map[string]bool)
	for _, c := range codes {
		m[c] = true
	}
	return m
}

func (tc responseCase) httpHeader() http.Header {
	h := http.Header{}
	for k, v := range tc.header {
		h.Set(k, v)
	}
	return h
}

// check compares the parts of out that do not depend on how the answer
// arrived.
func (tc responseCase) check(t *testing.T, out kaleyra.Outcome) {
	t.Helper()
	if out.Class != tc.class || out.Code != tc.code {
		t.Errorf("got %v %s (%q), want %v %s", out.Class, out.Code, out.Message, tc.class, tc.code)
	}
	if out.ErrorCode != tc.errorCode {
		t.Errorf("ErrorCode = %q, want %q", out.ErrorCode, tc.errorCode)
	}
	if out.AgentLaunchID != tc.agentLaunchID {
		t.Errorf("AgentLaunchID = %q, want %q", out.AgentLaunchID, tc.agentLaunchID)
	}
	if out.Uncertain != tc.uncertain {
		t.Errorf("Uncertain = %v, want %v", out.Uncertain, tc.uncertain)
	}
	if out.RetryAfter != tc.retryAfter {
		t.Errorf("RetryAfter = %v, want %v", out.RetryAfter, tc.retryAfter)
	}
	if out.HTTPStatus != tc.status {
		t.Errorf("HTTPStatus = %d, want %d", out.HTTPStatus, tc.status)
	}
	if tc.raw {
		if !bytes.Equal(out.Raw, []byte(tc.body)) {
			t.Errorf("Raw = %.60q..., want the body", out.Raw)
		}
	} else if out.Raw != nil {
		t.Errorf("Raw = %.60q..., want nil", out.Raw)
	}
	if tc.message != "" && out.Message != tc.message {
		t.Errorf("Message = %q, want %q", out.Message, tc.message)
	}
	for _, s := range tc.contains {
		if !strings.Contains(out.Message, s) {
			t.Errorf("Message = %q, want it to contain %q", out.Message, s)
		}
	}
	checkMessage(t, out)
}

// checkMessage asserts what holds for every Message: present, valid UTF-8,
// one line, bounded.
func checkMessage(t *testing.T, out kaleyra.Outcome) {
	t.Helper()
	if out.Message == "" && out.Class != kaleyra.Succeeded {
		t.Errorf("empty Message for %v %s", out.Class, out.Code)
	}
	if !utf8.ValidString(out.Message) {
		t.Errorf("Message is not valid UTF-8: %q", out.Message)
	}
	if strings.ContainsAny(out.Message, "\x00\n\r\x1b") {
		t.Errorf("Message has control characters: %q", out.Message)
	}
	if len(out.Message) > 1024 {
		t.Errorf("Message is %d bytes long", len(out.Message))
	}
}

func TestParseResponse(t *testing.T) {
	for _, tc := range responseCases {
		t.Run(tc.name, func(t *testing.T) {
			out := kaleyra.ParseResponse(tc.status, tc.httpHeader(), []byte(tc.body), tc.retrySet())
			tc.check(t, out)
			if out.Duration != 0 {
				t.Errorf("Duration = %v, want 0 from ParseResponse", out.Duration)
			}
		})
	}
}

func TestParseResponseRawIsACopy(t *testing.T) {
	body := []byte(sampleRCS904)
	out := kaleyra.ParseResponse(400, nil, body, nil)
	body[0] = 'X'
	if !json.Valid(out.Raw) {
		t.Fatalf("Raw shares the caller's buffer")
	}
}

func TestParseResponseTooLarge(t *testing.T) {
	body := append([]byte(`{"code":"RCS902","pad":"`), bytes.Repeat([]byte("a"), 1<<20)...)
	body = append(body, `"}`...)
	out := kaleyra.ParseResponse(200, nil, body, nil)
	if out.Code != kaleyra.CodeBadResponse || !strings.Contains(out.Message, "larger than 1 MiB") || out.Raw != nil || !out.Uncertain {
		t.Errorf("got %+v", out)
	}
	checkMessage(t, out)

	exact := append([]byte(`{"code":"RCS904","pad":"`), bytes.Repeat([]byte("a"), 1<<20-26)...)
	exact = append(exact, `"}`...)
	if len(exact) != 1<<20 {
		t.Fatalf("test body is %d bytes", len(exact))
	}
	if out := kaleyra.ParseResponse(400, nil, exact, nil); out.Code != "RCS904" {
		t.Errorf("a body of exactly 1 MiB: got %s %q", out.Code, out.Message)
	}
}

func TestParseResponseExcerpt(t *testing.T) {
	for _, body := range []string{
		strings.Repeat("é", 3000),
		strings.Repeat("\x01", 3000),
		strings.Repeat("\xff", 3000),
		strings.Repeat("a", 199) + "é",
		strings.Repeat("a", 3000),
	} {
		out := kaleyra.ParseResponse(500, nil, []byte(body), nil)
		const prefix = "body is not valid JSON (HTTP 500): "
		ex, ok := strings.CutPrefix(out.Message, prefix)
		if !ok {
			t.Fatalf("Message = %q, want prefix %q", out.Message, prefix)
		}
		if len(ex) > 200 || !utf8.ValidString(ex) || !strings.HasSuffix(ex, "…") {
			t.Errorf("excerpt of %.10q... is %d bytes: %q", body, len(ex), ex)
		}
	}
	short := strings.Repeat("a", 200)
	if out := kaleyra.ParseResponse(500, nil, []byte(short), nil); !strings.HasSuffix(out.Message, ": "+short) {
		t.Errorf("a 200-byte body was cut: %q", out.Message)
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[kaleyra.Class]string{
		kaleyra.Succeeded: "succeeded",
		kaleyra.Retryable: "retryable",
		kaleyra.Terminal:  "terminal",
		kaleyra.Throttled: "throttled",
		0:                 "Class(0)",
		9:                 "Class(9)",
	} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

// TestParseResponseMatchesOld checks that ParseResponse classifies every
// case as it did when it decoded an answer with json.Unmarshal, and data and
// error again.
func TestParseResponseMatchesOld(t *testing.T) {
	for _, tc := range responseCases {
		t.Run(tc.name, func(t *testing.T) {
			got := kaleyra.ParseResponse(tc.status, tc.httpHeader(), []byte(tc.body), tc.retrySet())
			want := kaleyra.OldParseResponse(tc.status, tc.httpHeader(), []byte(tc.body), tc.retrySet())
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestEnvelopesMatchOld checks that ParseResponse, which reads an answer's
// envelope without json.Unmarshal, classifies as it did answers whose
// members only Unmarshal's way of matching names reads right.
func TestEnvelopesMatchOld(t *testing.T) {
	retry := map[string]bool{"RCS502": true}
	for _, body := range envelopeCases {
		for _, status := range []int{200, 400, 429} {
			got := kaleyra.ParseResponse(status, nil, []byte(body), retry)
			want := kaleyra.OldParseResponse(status, nil, []byte(body), retry)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("HTTP %d %s:\ngot  %+v\nwant %+v", status, body, got, want)
			}
		}
	}
}

// envelopeCases are answers for TestEnvelopesMatchOld and
// FuzzParseResponseMatchesOld: members that repeat, names in another case,
// escaped or matched by case folding alone (the long s is an s), names
// nested deeper, white space everywhere, and text after the object.
var envelopeCases = []string{
	`{"code":"RCS904","CODE":"RCS902","data":{"launch":{"agent_launch_id":"a"}}}`,
	`{"Code":"RCS902","Data":{"launch":{"agent_launch_id":"a"}},"data":[]}`,
	`{"c\u006fde":"RCS902","data":{"launch":{"agent_launch_id":"a"}}}`,
	"{\"code\":\"RCS904\",\"me\u017f\u017fage\":\"long s\",\"error\":{\"error_code\":\"E\"}}",
	`{"data":{"code":"RCS902"},"code":"RCS904"}`,
	`{"code":"RCS904","message":"m","error":{"error_message":"{\"message\":\"inner\"}"},"error":{"error_code":"E"}}`,
	` { "code" : "RCS902" , "data" : { "launch" : { "agent_launch_id" : "a" } } } `,
	`{"code":"RCS902","data":{"launch":{"agent_launch_id":"a"}},"code":null}`,
	`{"code":"RCS902","data":{"launch":{"agent_launch_id":"a\u0000"}}}`,
	"{\"code\":\"RCS902\",\"data\":{\"launch\":{\"agent_launch_id\":\"\xff\"}}}",
	`{"":"x","code":"RCS902","data":{"launch":{"agent_launch_id":"a"}}}`,
	`{"code":"RCS902","data":{"launch":{"agent_launch_id":"a"}}}garbage`,
	`{"code":"RCS902","data":{"launch":{"agent_launch_id":"a"}}`,
	`[{"code":"RCS902"}]`,
	`{}`,
}

// TestReadersMatchOld checks launchID and errorDetail against the decoding
// they replace on the shapes they must tell apart: any value for data or
// error, members that repeat, names in another case or escaped, and names
// that only case folding may match (a long s for an s, a dotless i for an
// i).
func TestReadersMatchOld(t *testing.T) {
	for _, raw := range readerCases {
		checkReaders(t, []byte(raw))
	}
}

// checkReaders compares launchID and errorDetail with the old ones on raw.
func checkReaders(t *testing.T, raw []byte) {
	t.Helper()
	id, ok := kaleyra.LaunchID(raw)
	if wantID, wantOK := kaleyra.OldLaunchID(raw); id != wantID || ok != wantOK {
		t.Errorf("launchID(%s) = %q, %v; want %q, %v", raw, id, ok, wantID, wantOK)
	}
	code, msg := kaleyra.ErrorDetail(raw)
	if wantCode, wantMsg := kaleyra.OldErrorDetail(raw); code != wantCode || msg != wantMsg {
		t.Errorf("errorDetail(%s) = %q, %q; want %q, %q", raw, code, msg, wantCode, wantMsg)
	}
}

// readerCases are values of data or error for TestReadersMatchOld and
// FuzzReadersMatchOld.
var readerCases = []string{
	``, `null`, `[]`, `{}`, `"x"`, `12`, `true`, ` {"launch":{"agent_launch_id":"a"}} `,
	`{"launch":{"agent_launch_id":"a"}}`,
	`{"launch":{"agent_launch_id":"a"},"launch":{}}`,
	`{"launch":{"agent_launch_id":"a"},"launch":{"agent_launch_id":"b"}}`,
	`{"launch":{"agent_launch_id":"a"},"launch":null}`,
	`{"launch":{"agent_launch_id":"a"},"launch":[]}`,
	`{"launch":"x","launch":{"agent_launch_id":"a"}}`,
	`{"launch":{"agent_launch_id":"a","agent_launch_id":null}}`,
	`{"launch":{"agent_launch_id":"a","Agent_Launch_ID":"b"}}`,
	`{"LAUNCH":{"AGENT_LAUNCH_ID":"a"}}`,
	`{"l\u0061unch":{"agent_launch_id":"\u0061"}}`,
	`{"launch":{"agentlaunchid":"a","agent-launch-id":"b"}}`,
	"{\"launch\":{\"agent_launch_id\":\"a\",\"\u212aey\":1}}",
	"{\"launch\":{\"agent_launch_\u0131d\":\"a\"}}",
	"{\"laun\xffch\":{\"agent_launch_id\":\"a\"}}",
	`{"data":[1,{"launch":"x"}],"launch":{"x":[{"agent_launch_id":"b"}],"agent_launch_id":"a"}}`,
	`{"launch":{"agent_launch_id":{"a":1}}}`,
	`{ "launch" : { "agent_launch_id" : "a" } , "x" : -1.5e3 }`,
	`{"error_code":"E","error_message":"m"}`,
	`{"error_code":"E","error_code":7,"ERROR_MESSAGE":"m","error_messaGe":null}`,
	"{\"error_code\":\"E\",\"error_me\u017f\u017fage\":\"m\"}",
	`{"error_message":"{\"status\":\"FAILED\",\"message\":\"inner\"}"}`,
	`{"error_message":" {\"message\":\"\"}"}`,
	`{"error_code":"E\n1","error_message":"m"}`,
}

func BenchmarkParseResponseSuccess(b *testing.B) {
	benchmarkParseResponse(b, 200, sampleSuccess, kaleyra.Succeeded)
}

func BenchmarkParseResponseFailure(b *testing.B) {
	benchmarkParseResponse(b, 400, sampleRCS904, kaleyra.Terminal)
}

// benchmarkParseResponse measures ParseResponse as it was and as it is, side
// by side.
func benchmarkParseResponse(b *testing.B, status int, answer string, class kaleyra.Class) {
	body := []byte(answer)
	retry := map[string]bool{"RCS502": true}
	for _, parse := range []struct {
		name string
		f    func(int, http.Header, []byte, map[string]bool) kaleyra.Outcome
	}{
		{"old", kaleyra.OldParseResponse},
		{"new", kaleyra.ParseResponse},
	} {
		b.Run(parse.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if out := parse.f(status, nil, body, retry); out.Class != class {
					b.Fatal(out.Message)
				}
			}
		})
	}
}

// BenchmarkAnswerSuccess measures all that Launch does with a typical
// answer once read, as it was and as it is: scrub the key, classify, redact.
func BenchmarkAnswerSuccess(b *testing.B) {
	benchmarkAnswer(b, 200, sampleSuccess, kaleyra.Succeeded)
}

// BenchmarkAnswerFailure is BenchmarkAnswerSuccess for an answer with
// escapes in it, which scrub cannot find clean at a glance.
func BenchmarkAnswerFailure(b *testing.B) {
	benchmarkAnswer(b, 400, sampleRCS904, kaleyra.Terminal)
}

func benchmarkAnswer(b *testing.B, status int, answer string, class kaleyra.Class) {
	c := kaleyra.KeyClient(testKey)
	body := []byte(answer)
	header := http.Header{"Content-Type": {"application/json"}}
	for _, path := range []struct {
		name string
		f    func(int, http.Header, []byte) kaleyra.Outcome
	}{
		{"old", c.OldAnswer},
		{"new", c.Answer},
	} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if out := path.f(status, header, body); out.Class != class {
					b.Fatal(out.Message)
				}
			}
		})
	}
}
