package accounts

import (
	"math"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/baseurl"
	"github.com/rcslaunch/rcslaunch/internal/secret"
)

// FuzzParse: Parse never panics, a list it accepts keeps every rule, and no
// error holds the key (unless the file itself spells it, as a SID may).
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"- {sid: HX12, api_key_env: KEY_A}\n- {sid: B, pod: na, api_key_file: key.txt, rate: 2.5, burst: 3, max_in_flight: 4, retry_max: 0}",
		`[{"sid": "HX12", "api_key_env": "KEY_A", "rate": 1e3, "burst": 5}]`,
		`[{"sid": "A", "api_key_env": "NL"}, {"sid": "A", "api_key_file": "ctrl.txt", "SID": 1, "rate": null}]`,
		"- sid: A\n  api_key_file: two-lines.txt\n  rate: .nan\n  burst: 0x10\n- &x {sid: B, api_key_env: CTRL}\n- *x\n",
		"- {sid: \"A/B\", api_key_env: KEY_A, api_key_file: key.txt, pod: eu, max_in_flight: 3000000000}",
		"accounts: []", "[]", "", "---\n---", "- [1, 2]", `{"sid": "A"}`, "[1, \"a\", null, true]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse("/etc/rcs/a.yaml", data, defaults, testEnv, testFiles)
		if err != nil {
			if got != nil {
				t.Errorf("accounts and an error: %v", err)
			}
			if key := secret.String(testKey); key.In(err.Error()) && !key.In(string(data)) {
				t.Errorf("error holds the key: %v", err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no accounts and no error")
		}
		seen := map[string]bool{}
		for _, a := range got {
			if err := baseurl.CheckSID(a.SID); err != nil || seen[a.SID] {
				t.Errorf("accepted SID %q (%v, duplicate %v)", a.SID, err, seen[a.SID])
			}
			seen[a.SID] = true
			if _, err := baseurl.ForPod(a.Pod); err != nil {
				t.Errorf("accepted pod %q", a.Pod)
			}
			if a.APIKey.Reveal() != testKey {
				t.Errorf("account %s: key is not the one given", a.SID)
			}
			if !(a.Rate > 0) || math.IsInf(a.Rate, 0) || a.Burst < 1 || a.MaxInFlight < 1 || a.RetryMax < 0 {
				t.Errorf("accepted limits %+v", a)
			}
		}
	})
}
