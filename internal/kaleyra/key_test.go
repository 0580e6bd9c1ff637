package kaleyra_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
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
