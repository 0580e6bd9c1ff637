// Package baseurl says where Kaleyra's RCS API is: the base URL of an
// account's pod, or a URL given instead of it once checked to be safe to send
// the API key to. It knows nothing of environment variables: its errors name
// what was wrong (pod, base URL), and the caller says which setting held it.
package baseurl

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/defaults"
)

// Resolve returns the API base URL, without a trailing slash: override when
// it is set (checked by Check), otherwise the URL of pod (ForPod). Its errors
// say which of the two was refused.
func Resolve(pod, override string) (string, error) {
	if override != "" {
		base, err := Check(override)
		if err != nil {
			return "", fmt.Errorf("base URL: %w", err)
		}
		return base, nil
	}
	base, err := ForPod(pod)
	if err != nil {
		return "", fmt.Errorf("pod: %w", err)
	}
	return base, nil
}

// ForPod returns Kaleyra's API base URL for pod ("in" or "na"), so
// https://rcs-api.<pod>.kaleyra.io.
func ForPod(pod string) (string, error) {
	switch pod {
	case "in", "na":
		return "https://rcs-api." + pod + ".kaleyra.io", nil
	case "":
		return "", errors.New(`empty; want "in" or "na"`)
	default:
		return "", fmt.Errorf(`%s is unknown; want "in" or "na"`, quote(pod, 40))
	}
}

// Check validates a base URL given instead of a pod's: an absolute https URL
// (plain http only for a loopback host, since the API key would travel in
// clear) with no user information, query or fragment, because the api-key
// header goes wherever it points. It returns the URL without trailing
// slashes. Its errors never repeat user information, which may hold a
// password.
func Check(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // ue.URL would repeat the whole value
		}
		return "", fmt.Errorf("not a valid URL: %w", err)
	}
	if u.User != nil {
		return "", errors.New("must not contain user information (user:password@)")
	}
	shown := quote(u.String(), 200)
	if u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%s is not an absolute URL such as https://rcs-api.in.kaleyra.io", shown)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("%s has no host name", shown)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("%s: plain http is allowed only for a loopback host (127.0.0.0/8, ::1, localhost), since the API key would travel in clear", shown)
		}
	default:
		return "", fmt.Errorf("%s: scheme must be https (or http for a loopback host), got %q", shown, u.Scheme)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", fmt.Errorf("%s must not have a query", shown)
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return "", fmt.Errorf("%s must not have a fragment", shown)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// StatusPath returns path, or defaults.LaunchStatusPath when it is empty, after
// checking that it is an absolute path with no query, fragment, space or
// placeholder other than {sid}, so that the URL built from it is the one
// configured.
func StatusPath(path string) (string, error) {
	if path == "" {
		return defaults.LaunchStatusPath, nil
	}
	switch rest := strings.ReplaceAll(path, "{sid}", ""); {
	case !strings.HasPrefix(path, "/"):
		return "", fmt.Errorf("%s must start with '/'", quote(path, 100))
	case strings.IndexFunc(path, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0:
		return "", fmt.Errorf("%s must be printable ASCII without spaces", quote(path, 100))
	case strings.ContainsAny(path, "?#"):
		return "", fmt.Errorf("%s must not hold a query or fragment: the client adds agent_number and agent_launch_id", quote(path, 100))
	case strings.ContainsAny(rest, "{}"):
		return "", fmt.Errorf("%s has a placeholder other than {sid}", quote(path, 100))
	}
	return path, nil
}

// MaxSIDLen is the longest account SID CheckSID accepts.
const MaxSIDLen = 128

// CheckSID accepts an account SID of letters, digits, '-' and '_', at most
// MaxSIDLen bytes, so that the SID is one path segment of every call that
// needs no escaping.
func CheckSID(sid string) error {
	switch {
	case sid == "":
		return errors.New("empty")
	case len(sid) > MaxSIDLen:
		return fmt.Errorf("%d bytes long, more than the %d allowed", len(sid), MaxSIDLen)
	}
	for _, r := range sid {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%s must contain only letters, digits, '-' and '_'", quote(sid, 40))
		}
	}
	return nil
}

// quote quotes s for an error message, cut to at most limit bytes before
// quoting (ending in "…" when cut).
func quote(s string, limit int) string {
	if len(s) > limit {
		n := limit - len("…")
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}
