package config

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// fuzzVars are the variables FuzzLoad sets, in the positions of its spec.
var fuzzVars = []string{"REDIS_URL", "REDIS_CLUSTER_ADDRS", "KALEYRA_SID", "KALEYRA_POD", "KALEYRA_BASE_URL",
	"KALEYRA_TIMEOUT", "KALEYRA_RATE_LIMIT", "KALEYRA_RATE_BURST", "KALEYRA_MAX_IN_FLIGHT", "COOLOFF_THRESHOLD",
	"COOLOFF_WINDOW", "COOLOFF_DURATION", "WORKER_CONCURRENCY", "RETRY_MAX", "RETRY_BASE_DELAY", "RETRY_MAX_DELAY",
	"RETRY_CODES", "JOB_RETENTION", "RESULTS_MAX_LEN", "HTTP_ADDR", "METRICS_ADDR", "HTTP_TOKEN", "HTTP_ADMIN_TOKEN",
	"LOG_LEVEL", "LOG_FORMAT"}

// Spec separators: values are separated by fieldSep, in the order of
// fuzzVars; a value that is exactly unsetMark leaves its variable unset, as
// does a position past the end of the spec.
const (
	fieldSep  = "\x1f"
	unsetMark = "\x1e"
)

func fuzzSpec(vals map[string]string) string {
	out := make([]string, len(fuzzVars))
	for i, name := range fuzzVars {
		v, ok := vals[name]
		if !ok {
			v = unsetMark
		}
		out[i] = v
	}
	return strings.Join(out, fieldSep)
}

// loadWith sets the environment from spec and apiKey and loads it.
func loadWith(t *testing.T, need Need, apiKey, spec string) (Config, error) {
	clearEnv(t)
	t.Setenv("KALEYRA_API_KEY", apiKey)
	for i, v := range strings.Split(spec, fieldSep) {
		if i < len(fuzzVars) && v != unsetMark {
			t.Setenv(fuzzVars[i], v)
		}
	}
	return Load(need)
}

// FuzzLoad sets every variable rcslaunch reads from fuzzed values and loads
// them: Load never panics; each line of its error starts with the name of a
// variable it reads; the API key's value changes nothing in the error or in
// any printing of the Config (only whether it is set counts), so the key can
// never appear in either; and REDIS_URL's errors name REDIS_URL and never
// depend on its password.
func FuzzLoad(f *testing.F) {
	valid := map[string]string{
		"REDIS_URL": "redis://:s3cret-pass@127.0.0.1:6379/0", "KALEYRA_SID": "HXIN1234", "KALEYRA_POD": "na",
		"KALEYRA_BASE_URL": "https://rcs-api.in.kaleyra.io/", "KALEYRA_TIMEOUT": "10s", "KALEYRA_RATE_LIMIT": "2.5",
		"KALEYRA_RATE_BURST": "3", "KALEYRA_MAX_IN_FLIGHT": "4", "WORKER_CONCURRENCY": "8", "RETRY_MAX": "0",
		"RETRY_BASE_DELAY": "250ms", "RETRY_MAX_DELAY": "1m", "RETRY_CODES": "RCS502,RCS500", "JOB_RETENTION": "0",
		"RESULTS_MAX_LEN": "100000", "LOG_LEVEL": "debug", "LOG_FORMAT": "console", "HTTP_TOKEN": "tok-0123456789abcdef",
	}
	f.Add(uint8(0), "", fuzzSpec(nil))
	f.Add(uint8(3), "sk-live-0123456789abcdef", fuzzSpec(valid))
	f.Add(uint8(3), "   ", fuzzSpec(map[string]string{"KALEYRA_SID": "a/b c"}))
	for name, bad := range map[string]string{
		"KALEYRA_POD": "eu", "KALEYRA_BASE_URL": "http://kaleyra.example.com", "KALEYRA_TIMEOUT": "0s",
		"KALEYRA_RATE_LIMIT": "-1", "KALEYRA_RATE_BURST": "0", "KALEYRA_MAX_IN_FLIGHT": "0", "WORKER_CONCURRENCY": "ten",
		"RETRY_MAX": "-2", "RETRY_BASE_DELAY": "", "RETRY_MAX_DELAY": "1ms", "RETRY_CODES": "RCS502,,", "JOB_RETENTION": "-1h",
		"RESULTS_MAX_LEN": "9223372036854775808", "LOG_LEVEL": "loud", "LOG_FORMAT": "xml", "COOLOFF_THRESHOLD": "-1",
		"COOLOFF_WINDOW": "1y", "COOLOFF_DURATION": "-5s", "REDIS_URL": "ftp://user:hunter22@host:1/0",
		"REDIS_CLUSTER_ADDRS": "127.0.0.1:7000,,127.0.0.1:7001",
	} {
		f.Add(uint8(1), "sk-test-KEY-in-"+name, fuzzSpec(map[string]string{name: bad}))
	}
	// The key repeated in other variables' values: their errors may quote
	// those values, never the key as the key.
	f.Add(uint8(3), "sk-dup-key", fuzzSpec(map[string]string{"KALEYRA_POD": "sk-dup-key", "LOG_LEVEL": "sk-dup-key",
		"KALEYRA_BASE_URL": "http://sk-dup-key.example/", "REDIS_URL": "redis://:sk-dup-key@h:1/0"}))
	f.Add(uint8(12), "k", fuzzSpec(map[string]string{"HTTP_TOKEN": "short", "HTTP_ADMIN_TOKEN": "change-me-admin", "METRICS_ADDR": ":9090"}))
	f.Add(uint8(8), "k", fuzzSpec(map[string]string{"HTTP_TOKEN": "change-me-producer", "METRICS_ADDR": ":9090"}))
	f.Add(uint8(2), "k", fuzzSpec(map[string]string{"KALEYRA_BASE_URL": "https://user:pw@h/x?q=1#f", "KALEYRA_POD": "\n\t\u202e",
		"RETRY_CODES": " RCS502", "HTTP_ADDR": "0.0.0.0:80"}))

	f.Fuzz(func(t *testing.T, needBits uint8, apiKey, spec string) {
		if strings.Contains(apiKey+spec, "\x00") {
			t.Skip("the environment cannot hold NUL bytes")
		}
		need := Need(needBits) & (NeedSID | NeedAPIKey | NeedStrongTokens | NeedStrongMetricsToken)
		c, err := loadWith(t, need, apiKey, spec)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !namesVariable(line) {
					t.Fatalf("error line %q does not start with the variable's name", line)
				}
			}
		}
		// A token's value counts only by its length and whether it is a
		// placeholder, so it can never appear in the error.
		fields := strings.Split(spec, fieldSep)
		for i, name := range fuzzVars {
			if (name != "HTTP_TOKEN" && name != "HTTP_ADMIN_TOKEN") || i >= len(fields) || fields[i] == unsetMark ||
				fields[i] == "" || slices.ContainsFunc(placeholderTokens, func(p string) bool { return strings.EqualFold(p, fields[i]) }) {
				continue
			}
			other := slices.Clone(fields)
			other[i] = strings.Repeat("q", len(fields[i]))
			if _, err2 := loadWith(t, need, apiKey, strings.Join(other, fieldSep)); errString(err) != errString(err2) {
				t.Fatalf("%s's value changed the error:\n%v\n%v", name, err, err2)
			}
		}
		// Only whether the key is set may count.
		if strings.TrimSpace(apiKey) != "" {
			other := "other-key-" + strings.Repeat("z", len(apiKey)%7)
			c2, err2 := loadWith(t, need, other, spec)
			if errString(err) != errString(err2) {
				t.Fatalf("the API key's value changed the error:\n%v\n%v", err, err2)
			}
			if fmtAll(c) != fmtAll(c2) {
				t.Fatalf("the API key's value changed how the Config prints:\n%s\n%s", fmtAll(c), fmtAll(c2))
			}
			if len(apiKey) >= 8 && !strings.Contains(errString(err2)+fmtAll(c2), apiKey) && strings.Contains(errString(err)+fmtAll(c), apiKey) {
				t.Fatalf("the API key appears in the error or the printed Config")
			}
		}
		if err != nil {
			return
		}
		_, rerr := c.RedisConnOpt()
		if rerr == nil {
			return
		}
		if !strings.HasPrefix(rerr.Error(), "REDIS_URL: ") {
			t.Fatalf("RedisConnOpt error does not name REDIS_URL: %v", rerr)
		}
		if u, perr := url.Parse(c.RedisURL); perr == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "different-password")
				c2 := c
				c2.RedisURL = u.String()
				if _, rerr2 := c2.RedisConnOpt(); errString(rerr2) != errString(rerr) {
					t.Fatalf("REDIS_URL's password changed its error:\n%v\n%v", rerr, rerr2)
				}
			}
		}
	})
}

// namesVariable reports whether line starts with a variable Load reads.
func namesVariable(line string) bool {
	for _, name := range append(fuzzVars, "KALEYRA_API_KEY") {
		if strings.HasPrefix(line, name+": ") {
			return true
		}
	}
	return false
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
