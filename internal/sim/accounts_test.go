package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// Per-account keys and scripts: what a test of several Kaleyra accounts
// needs from the simulator.

const (
	sidA, keyA = "ACCOUNT_A", "key-of-account-a-0001"
	sidB, keyB = "ACCOUNT_B", "key-of-account-b-0002"
)

// TestPerAccountKeys: a call for an SID in Config.Keys must carry that
// SID's key (another account's key, or the default one, is RCS401); other
// SIDs still take APIKey. Call.KeyOK says which calls carried their own key.
func TestPerAccountKeys(t *testing.T) {
	s, ts := start(t, Config{Keys: map[string]string{sidA: keyA, sidB: keyB}})
	for _, tc := range []struct {
		sid, key string
		want     int
	}{
		{sidA, keyA, 200},
		{sidB, keyB, 200},
		{testSID, testKey, 200},
		{sidA, keyB, 401},    // another account's key
		{sidA, testKey, 401}, // the default key is not A's
		{testSID, keyA, 401}, // an account's key is not the default
		{sidB, "", 401},
	} {
		r := call(t, ts, body("1"), withSID(tc.sid), header("api-key", tc.key))
		if r.status != tc.want {
			t.Errorf("SID %s with key %q: status %d, want %d", tc.sid, tc.key, r.status, tc.want)
		}
	}
	var got []string
	for _, c := range s.Calls() {
		got = append(got, fmt.Sprintf("%s:%v:%s", c.SID, c.KeyOK, c.Code))
	}
	want := fmt.Sprint([]string{sidA + ":true:RCS902", sidB + ":true:RCS902", testSID + ":true:RCS902",
		sidA + ":false:RCS401", sidA + ":false:RCS401", testSID + ":false:RCS401", sidB + ":false:RCS401"})
	if fmt.Sprint(got) != want {
		t.Errorf("calls (sid:key_ok:code)\n got %v\nwant %v", got, want)
	}

	// A refused method is answered RCS405 whatever the key, and the call
	// still says whether its key was right.
	call(t, ts, body("1"), withSID(sidA), header("api-key", keyA), method(http.MethodGet))
	if c := s.Calls()[len(s.Calls())-1]; c.Code != "RCS405" || !c.KeyOK {
		t.Errorf("GET with A's key: %+v, want RCS405 with key_ok", c)
	}

	// Keys change at run time, and SetConfig keeps its own copy.
	keys := map[string]string{sidA: keyB}
	s.SetConfig(Config{APIKey: testKey, Keys: keys})
	keys[sidA] = keyA
	if r := call(t, ts, body("1"), withSID(sidA), header("api-key", keyB)); r.status != 200 {
		t.Errorf("after A's key changed to B's: status %d", r.status)
	}
	if r := call(t, ts, body("1"), withSID(sidB), header("api-key", keyB)); r.status != 401 {
		t.Errorf("B no longer listed, its old key: status %d, want 401", r.status)
	}
}

// TestPerAccountKeysOnStatusRoute: the launch status route checks the same
// keys and records KeyOK too.
func TestPerAccountKeysOnStatusRoute(t *testing.T) {
	s, ts := start(t, Config{Keys: map[string]string{testSID: keyA}})
	id := launched(t, ts, "48900", header("api-key", keyA))
	if r := poll(t, ts, "48900", id, header("api-key", keyA)); r.status != 200 {
		t.Errorf("status call with the account's key: %d %s", r.status, r.body)
	}
	if r := poll(t, ts, "48900", id, header("api-key", testKey)); r.status != 401 {
		t.Errorf("status call with the default key: %d, want 401", r.status)
	}
	var got []string
	for _, c := range s.StatusCalls() {
		got = append(got, fmt.Sprintf("%v:%s", c.KeyOK, c.Answer))
	}
	if fmt.Sprint(got) != "[true:pending false:RCS401]" {
		t.Errorf("status calls (key_ok:answer) %v", got)
	}
}

// TestKeysNeverRecorded: the accounts' keys, right or wrong, show up in
// nothing the simulator reports.
func TestKeysNeverRecorded(t *testing.T) {
	s, ts := start(t, Config{Keys: map[string]string{sidA: keyA, sidB: keyB}})
	call(t, ts, body("1"), withSID(sidA), header("api-key", keyA))
	call(t, ts, body("1"), withSID(sidA), header("api-key", keyB))
	_, calls := control(t, ts, "GET", "/_sim/calls", "")
	_, stats := control(t, ts, "GET", "/_sim/stats", "")
	cj, _ := json.Marshal(s.Calls())
	for name, b := range map[string][]byte{"/_sim/calls": calls, "/_sim/stats": stats, "Calls": cj} {
		if bytes.Contains(b, []byte(keyA)) || bytes.Contains(b, []byte(keyB)) || bytes.Contains(b, []byte("key-of")) {
			t.Errorf("%s contains an account's key: %s", name, b)
		}
	}
	var typed []struct {
		KeyOK *bool `json:"key_ok"`
	}
	if err := json.Unmarshal(calls, &typed); err != nil || len(typed) != 2 || typed[0].KeyOK == nil || !*typed[0].KeyOK ||
		typed[1].KeyOK == nil || *typed[1].KeyOK {
		t.Errorf("/_sim/calls key_ok: %v %s", err, calls)
	}
}

// TestScriptSID: an account's script answers its next valid calls, whatever
// their agent, after the agents' own scripts; other accounts are untouched,
// rejected calls use no step, and Reset forgets it.
func TestScriptSID(t *testing.T) {
	s, ts := start(t, Config{})
	s.ScriptSID(sidA, StepGateway, StepThrottle)
	s.ScriptSID(sidA, StepGateway) // appends
	s.Script("7", StepServerError)
	if r := call(t, ts, body("1"), withSID(sidB)); r.status != 200 {
		t.Errorf("another account: status %d, want 200", r.status)
	}
	if r := call(t, ts, []byte(`{"launch":{"agent_no":"1"}}`), withSID(sidA)); r.status != 400 {
		t.Errorf("an invalid call: status %d, want 400", r.status)
	}
	var got []string
	for _, agent := range []string{"1", "7", "2", "3", "4"} {
		r := call(t, ts, body(agent), withSID(sidA))
		got = append(got, fmt.Sprintf("%s:%d", agent, r.status))
	}
	if want := "[1:500 7:500 2:429 3:500 4:200]"; fmt.Sprint(got) != want {
		t.Errorf("account A's calls (agent:status) %v, want %s", got, want)
	}
	if st := s.Stats(); st.ByCode["RCS502"] != 2 || st.ByCode["RCS500"] != 1 || st.ByCode["HTTP429"] != 1 {
		t.Errorf("stats %+v", st)
	}

	s.ScriptSID(sidA, StepGateway)
	s.Reset()
	if r := call(t, ts, body("1"), withSID(sidA)); r.status != 200 {
		t.Errorf("account script survived Reset: status %d", r.status)
	}

	defer func() {
		if recover() == nil {
			t.Errorf("ScriptSID with an unknown step did not panic")
		}
	}()
	s.ScriptSID(sidA, "RCS999")
}

// TestScriptSIDControlRoute: POST /_sim/script takes "sid" instead of
// "agent_no", never both.
func TestScriptSIDControlRoute(t *testing.T) {
	_, ts := start(t, Config{})
	if code, b := control(t, ts, "POST", "/_sim/script", `{"sid":"`+sidA+`","steps":["HTTP429"]}`); code != 204 {
		t.Fatalf("script an account: %d %s", code, b)
	}
	if r := call(t, ts, body("9"), withSID(sidA)); r.status != 429 {
		t.Errorf("scripted over HTTP: status %d, want 429", r.status)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"sid":"A","agent_no":"1","steps":["RCS502"]}`, "sid: give agent_no or sid, not both"},
		{`{"sid":"","steps":["RCS502"]}`, "agent_no: is required, or sid"},
		{`{"sid":"A","steps":["RCS999"]}`, `steps[0]: unknown step "RCS999"`},
	} {
		code, b := control(t, ts, "POST", "/_sim/script", tc.body)
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if code != 400 || !bytes.Contains([]byte(e.Error), []byte(tc.field)) {
			t.Errorf("POST /_sim/script %s: %d %s, want 400 naming %q", tc.body, code, b, tc.field)
		}
	}
}
