package kaleyra

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// BaseURL returns the API base URL, without a trailing slash. With override
// empty it is Kaleyra's URL for pod ("in" or "na"); otherwise it is override
// (KALEYRA_BASE_URL), once checked to be an absolute https URL (plain http
// only for a loopback host) with no user information, query or fragment,
// because the api-key header goes wherever this URL points.
func BaseURL(pod, override string) (string, error) {
	if override != "" {
		base, err := checkBaseURL(override)
		if err != nil {
			return "", fmt.Errorf("KALEYRA_BASE_URL: %w", err)
		}
		return base, nil
	}
	switch pod {
	case "in", "na":
		return "https://rcs-api." + pod + ".kaleyra.io", nil
	case "":
		return "", errors.New(`KALEYRA_POD: empty; want "in" or "na"`)
	default:
		return "", fmt.Errorf(`KALEYRA_POD: unknown pod %s; want "in" or "na"`, quote(pod, 40))
	}
}

// checkBaseURL validates a base URL and returns it without trailing slashes.
// Its errors never repeat user information, which may hold a password.
func checkBaseURL(raw string) (string, error) {
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
