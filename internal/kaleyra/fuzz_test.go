package kaleyra_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
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
