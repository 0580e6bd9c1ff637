package secret_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/secret"
)

const testKey = "k3y5ecret0f7e3b8497f58a94e84b671a"

func TestNeverPrinted(t *testing.T) {
	s := secret.String(testKey)
	type holder struct {
		Name string
		Key  secret.String
	}
	h := holder{"acct", s}
	var prints []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		prints = append(prints,
			fmt.Sprintf(verb, s),
			fmt.Sprintf(verb, h),
			fmt.Sprintf(verb, &h),
			fmt.Sprintf(verb, []secret.String{s}),
			fmt.Sprintf(verb, map[string]secret.String{"k": s}),
			fmt.Sprintf(verb, s.Matcher()),
			fmt.Sprintf(verb, *s.Matcher()),
		)
	}
	prints = append(prints, fmt.Sprint(s), fmt.Sprintln(h), s.String(), s.GoString())
	for _, v := range []any{s, h, &h, []secret.String{s}, map[string]secret.String{"k": s}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): %v", v, err)
		}
		prints = append(prints, string(b))
	}
	text, _ := s.MarshalText()
	prints = append(prints, string(text))
	for _, p := range prints {
		if strings.Contains(p, testKey) || strings.Contains(p, testKey[:8]) {
			t.Errorf("printed the key: %s", p)
		}
		if !strings.Contains(p, "[redacted]") {
			t.Errorf("printed %q, want [redacted] in it", p)
		}
	}
	if got, _ := json.Marshal(h); string(got) != `{"Name":"acct","Key":"[redacted]"}` {
		t.Errorf("json.Marshal = %s", got)
	}
	if got := fmt.Sprintf("%q", s); got != `"[redacted]"` {
		t.Errorf("%%q = %s", got)
	}
	if s.Reveal() != testKey {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
}
