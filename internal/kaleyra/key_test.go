package kaleyra_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
	"github.com/rcslaunch/rcslaunch/internal/secret/secrettest"
)

// testKey is the API key used throughout the tests; it must never show up in
// anything but the api-key header.
const testKey = "k3y5ecret0f7e3b8497f58a94e84b671a"

func TestClientNeverPrintsKey(t *testing.T) {
	o := kaleyra.Options{BaseURL: "https://rcs-api.in.kaleyra.io", SID: "SID1", APIKey: testKey}
	c, err := kaleyra.New(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		for _, v := range []any{c, *c, o, &o} {
			if p := fmt.Sprintf(verb, v); strings.Contains(p, testKey) {
				t.Errorf("fmt %s of %T printed the key: %s", verb, v, p)
			}
		}
	}
}

// echoAnswer is an answer that repeats the api-key it was sent, spelled by
// spell, where ECHO stands in body and Location.
type echoAnswer struct {
	status   int
	body     string
	location string
}

func (a echoAnswer) handler(spell func(string) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		echo := spell(r.Header.Get("api-key"))
		if a.location != "" {
			w.Header().Set("Location", strings.ReplaceAll(a.location, "ECHO", echo))
		}
		w.WriteHeader(a.status)
		io.WriteString(w, strings.ReplaceAll(a.body, "ECHO", echo))
	}
}

// holdsKey reports whether any text of an outcome (its strings, Raw and its
// decoded strings, its printed form) holds the test key in any spelling.
func holdsKey(raw json.RawMessage, strs ...string) bool {
	for _, s := range strs {
		if secrettest.Holds(s, testKey) {
			return true
		}
	}
	return secrettest.HoldsJSON(raw, testKey)
}

// TestLaunchRedactsEchoSpellings serves launch answers that echo the key
// escaped, in another case, split by an escape, percent-encoded or escaped
// twice, in each part of an answer that is kept or quoted, and checks that
// no spelling of it reaches the outcome, and that a JSON answer is kept,
// still JSON, with the key redacted.
func TestLaunchRedactsEchoSpellings(t *testing.T) {
	answers := map[string]echoAnswer{
		"message and error": {400, `{"code":"RCS904","message":"bad key ECHO","data":[],` +
			`"error":{"error_code":"E1","error_message":"key ECHO"}}`, ""},
		"JSON in error_message": {400, `{"code":"RCS904","message":"failed","data":[],` +
			`"error":{"error_message":"{\"status\":\"FAILED\",\"message\":\"key ECHO\"}"}}`, ""},
		"code":            {400, `{"code":"ECHO","message":"no"}`, ""},
		"error_code":      {400, `{"code":"RCS904","message":"no","error":{"error_code":"ECHO"}}`, ""},
		"object key":      {200, `{"code":"RCS902","data":{"launch":{"agent_launch_id":"id-1"}},"seen":{"ECHO":true}}`, ""},
		"agent_launch_id": {200, `{"code":"RCS902","data":{"launch":{"agent_launch_id":"ECHO"}}}`, ""},
		"JSON, no code":   {200, `{"headers":{"Api-Key":"ECHO"}}`, ""},
		"HTML":            {500, `<pre>api-key: ECHO</pre>`, ""},
		"redirect":        {302, "", "https://evil.example/?k=ECHO"},
		"429":             {429, `{"message":"slow down, ECHO"}`, ""},
		"429 text":        {429, `slow down, ECHO`, ""},
	}
	for spelling, spell := range secrettest.Spellings {
		for name, a := range answers {
			t.Run(spelling+"/"+name, func(t *testing.T) {
				srv := serve(t, a.handler(spell))
				out := newClient(t, srv.URL, nil).Launch(context.Background(), testJob().Body())
				checkMessage(t, out)
				if holdsKey(out.Raw, out.Code, out.Message, out.ErrorCode, out.AgentLaunchID, fmt.Sprintf("%+v", out)) {
					t.Fatalf("the key leaked: %+v\nRaw: %s", out, out.Raw)
				}
				if strings.HasPrefix(a.body, "{") && (!json.Valid(out.Raw) || !strings.Contains(string(out.Raw), "[redacted]")) {
					t.Errorf("Raw = %s, want the answer with the key redacted", out.Raw)
				}
			})
		}
	}
}

// TestLaunchStatusRedactsEchoSpellings is TestLaunchRedactsEchoSpellings for
// launch status answers.
func TestLaunchStatusRedactsEchoSpellings(t *testing.T) {
	answers := map[string]echoAnswer{
		"message":              {200, `{"data":{"launch_status":"PENDING"},"message":"key ECHO"}`, ""},
		"state":                {200, `{"data":{"status":"ECHO"}}`, ""},
		"error":                {200, `{"code":"RCS404","error":"no launch for ECHO"}`, ""},
		"not found":            {404, `{"code":"RCS404","message":"no launch for key ECHO","data":{"status":"ECHO"}}`, ""},
		"object key":           {200, `{"data":{"launch_status":"LAUNCHED","ECHO":1}}`, ""},
		"HTML":                 {502, `<pre>api-key: ECHO</pre>`, ""},
		"redirect":             {307, "", "https://evil.example/?k=ECHO"},
		"429":                  {429, `slow down, ECHO`, ""},
		"JSON in error detail": {200, `{"error":{"error_message":"{\"message\":\"ECHO\"}"}}`, ""},
	}
	for spelling, spell := range secrettest.Spellings {
		for name, a := range answers {
			t.Run(spelling+"/"+name, func(t *testing.T) {
				srv := serve(t, a.handler(spell))
				out := pollOnce(t, newClient(t, srv.URL, nil), testAgent, testLaunchID)
				if holdsKey(out.Raw, out.Code, out.Message, out.Reported, fmt.Sprintf("%+v", out)) {
					t.Fatalf("the key leaked: %+v\nRaw: %s", out, out.Raw)
				}
				if strings.HasPrefix(a.body, "{") && (!json.Valid(out.Raw) || !strings.Contains(string(out.Raw), "[redacted]")) {
					t.Errorf("Raw = %s, want the answer with the key redacted", out.Raw)
				}
			})
		}
	}
}
