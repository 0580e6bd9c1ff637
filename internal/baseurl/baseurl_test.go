package baseurl_test

import (
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/baseurl"
)

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		pod, override string
		want          string
		err           string // substring of the error; empty: no error
	}{
		{pod: "in", want: "https://rcs-api.in.kaleyra.io"},
		{pod: "na", want: "https://rcs-api.na.kaleyra.io"},
		{pod: "eu", err: `pod: "eu" is unknown; want "in" or "na"`},
		{pod: "IN", err: "pod: "},
		{pod: "", err: "pod: empty"},
		{pod: "eu", override: "https://proxy.example.com", want: "https://proxy.example.com"},
		{pod: "in", override: "https://proxy.example.com/", want: "https://proxy.example.com"},
		{override: "https://proxy.example.com:8443/kaleyra//", want: "https://proxy.example.com:8443/kaleyra"},
		{override: "HTTPS://Proxy.Example.com", want: "https://Proxy.Example.com"},
		{override: "http://127.0.0.1:8089", want: "http://127.0.0.1:8089"},
		{override: "http://127.1.2.3:8089/", want: "http://127.1.2.3:8089"},
		{override: "http://[::1]:8089", want: "http://[::1]:8089"},
		{override: "http://localhost:8089", want: "http://localhost:8089"},
		{override: "http://LocalHost", want: "http://LocalHost"},
		{override: "http://example.com", err: "base URL: \"http://example.com\": plain http is allowed only for a loopback host"},
		{override: "http://10.0.0.1:8089", err: "loopback"},
		{override: "http://localhost.example.com", err: "loopback"},
		{override: "http://[::2]", err: "loopback"},
		{override: "ftp://example.com", err: "scheme must be https"},
		{override: "rcs-api.in.kaleyra.io", err: "not an absolute URL"},
		{override: "/v1", err: "not an absolute URL"},
		{override: "https:opaque", err: "not an absolute URL"},
		{override: "https://", err: "not an absolute URL"},
		{override: "https://:443", err: "no host name"},
		{override: "::garbage::", err: "base URL: not a valid URL"},
		{override: "https://exa mple.com", err: "not a valid URL"},
		{override: "https://example.com/\n", err: "not a valid URL"},
		{override: "https://example.com?x=1", err: "must not have a query"},
		{override: "https://example.com?", err: "must not have a query"},
		{override: "https://example.com#frag", err: "must not have a fragment"},
		{override: "https://user:hunter2@example.com", err: "must not contain user information"},
		{override: "https://user:hunter2@example.com:bad", err: "not a valid URL"},
	} {
		got, err := baseurl.Resolve(tc.pod, tc.override)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("Resolve(%q, %q): %v", tc.pod, tc.override, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("Resolve(%q, %q) = %q, want %q", tc.pod, tc.override, got, tc.want)
		case tc.err != "" && err == nil:
			t.Errorf("Resolve(%q, %q) = %q, want an error", tc.pod, tc.override, got)
		case tc.err != "" && !strings.Contains(err.Error(), tc.err):
			t.Errorf("Resolve(%q, %q): %v, want %q in it", tc.pod, tc.override, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Resolve(%q, %q): the error repeats the password: %v", tc.pod, tc.override, err)
		}
	}
}

// TestNamesNoVariable: baseurl's errors name its own inputs; which variable
// held a value is its caller's to say.
func TestNamesNoVariable(t *testing.T) {
	for _, in := range [][2]string{{"eu", ""}, {"", ""}, {"in", "http://example.com"}, {"in", "::bad::"}} {
		if _, err := baseurl.Resolve(in[0], in[1]); err == nil || strings.Contains(err.Error(), "KALEYRA_") {
			t.Errorf("Resolve(%q, %q): %v, want an error naming no variable", in[0], in[1], err)
		}
	}
}
