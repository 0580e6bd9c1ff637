package suggest

import "testing"

func TestNearest(t *testing.T) {
	known := []string{"id", "launch", "regions", "optin_description", "agent_no"}
	for name, want := range map[string]string{
		"optin_desription": "optin_description",
		"Agent_No":         "agent_no",
		"ID":               "id",
		"region":           "regions",
		"x":                "",
		"foo":              "",
		"completely_else":  "",
	} {
		if got := Nearest(name, known); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"abc", "abc", 0}, {"ab", "ba", 2}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}
