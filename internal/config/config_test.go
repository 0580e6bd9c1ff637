package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// clearEnv unsets every variable Config reads, so the host's environment
// cannot leak into a test.
func clearEnv(t *testing.T) {
	for _, k := range []string{"REDIS_URL", "REDIS_CLUSTER_ADDRS", "KALEYRA_SID", "KALEYRA_API_KEY", "KALEYRA_POD",
		"KALEYRA_BASE_URL", "KALEYRA_TIMEOUT", "KALEYRA_RATE_LIMIT", "KALEYRA_RATE_BURST", "KALEYRA_MAX_IN_FLIGHT",
		"WORKER_CONCURRENCY", "RETRY_MAX", "RETRY_BASE_DELAY", "RETRY_MAX_DELAY", "RETRY_CODES", "JOB_RETENTION",
		"RESULTS_MAX_LEN", "LOG_LEVEL", "LOG_FORMAT", "COOLOFF_THRESHOLD", "COOLOFF_WINDOW", "COOLOFF_DURATION", "HTTP_ADDR", "HTTP_TOKEN", "HTTP_ADMIN_TOKEN", "METRICS_ADDR",
		"FOLLOW_LAUNCH", "LAUNCH_STATUS_PATH", "FOLLOW_INTERVAL", "FOLLOW_MAX_INTERVAL", "FOLLOW_MAX_AGE"} {
		t.Setenv(k, "")
		// t.Setenv then unset: envconfig tells unset from empty.
		unsetenv(t, k)
	}
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	c, err := Load(0)
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisURL != "redis://127.0.0.1:6379/0" || c.Pod != "in" || c.Timeout != 30*time.Second ||
		c.RateLimit != 10 || c.RateBurst != 1 || c.MaxInFlight != 5 || c.Concurrency != 10 || c.RetryMax != 8 ||
		c.RetryBaseDelay != time.Second || c.RetryMaxDelay != 5*time.Minute || len(c.RetryCodes) != 1 ||
		c.RetryCodes[0] != "RCS502" || c.JobRetention != 2160*time.Hour || c.ResultsMaxLen != 0 ||
		c.LogLevel != "info" || c.LogFormat != "json" || c.FollowLaunch ||
		c.LaunchStatusPath != "/v1/{sid}/rcs/agent/agentlaunchstatus" || c.FollowInterval != time.Minute ||
		c.FollowMaxInterval != 6*time.Hour || c.FollowMaxAge != 336*time.Hour {
		t.Errorf("defaults: %+v", c)
	}
}

func TestNeedNamesMissingVariables(t *testing.T) {
	clearEnv(t)
	_, err := Load(NeedSID | NeedAPIKey)
	if err == nil || !strings.Contains(err.Error(), "KALEYRA_SID") || !strings.Contains(err.Error(), "KALEYRA_API_KEY") {
		t.Fatalf("missing SID and key: %v", err)
	}
}

func TestBadValuesNameTheirVariable(t *testing.T) {
	cases := map[string]string{
		"KALEYRA_POD":           "eu",
		"KALEYRA_BASE_URL":      "http://kaleyra.example.com",
		"KALEYRA_TIMEOUT":       "0s",
		"KALEYRA_RATE_LIMIT":    "-1",
		"KALEYRA_RATE_BURST":    "0",
		"KALEYRA_MAX_IN_FLIGHT": "0",
		"WORKER_CONCURRENCY":    "0",
		"RETRY_MAX":             "-2",
		"RETRY_BASE_DELAY":      "0s",
		"RETRY_MAX_DELAY":       "1ms",
		"RETRY_CODES":           "RCS502,,",
		"JOB_RETENTION":         "-1h",
		"RESULTS_MAX_LEN":       "-5",
		"LOG_LEVEL":             "loud",
		"LOG_FORMAT":            "xml",
		"KALEYRA_SID":           "a/b",
		"COOLOFF_THRESHOLD":     "-1",
		"COOLOFF_WINDOW":        "0s",
		"COOLOFF_DURATION":      "-5s",
		"FOLLOW_LAUNCH":         "maybe",
		"LAUNCH_STATUS_PATH":    "v1/status?x=1",
		"FOLLOW_INTERVAL":       "500ms",
		"FOLLOW_MAX_INTERVAL":   "30s",
		"FOLLOW_MAX_AGE":        "1s",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(name, value)
			_, err := Load(0)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("%s=%q: error %v, want one naming %s", name, value, err, name)
			}
		})
	}
}

func TestUnparseableValueNamesVariable(t *testing.T) {
	clearEnv(t)
	t.Setenv("WORKER_CONCURRENCY", "ten")
	_, err := Load(0)
	if err == nil || !strings.Contains(err.Error(), "WORKER_CONCURRENCY") {
		t.Fatalf("got %v", err)
	}
}

func TestAPIKeyNeverInErrors(t *testing.T) {
	clearEnv(t)
	const key = "sk-config-test-SECRET"
	t.Setenv("KALEYRA_API_KEY", key)
	t.Setenv("KALEYRA_POD", "nowhere")
	t.Setenv("RETRY_MAX", "-1")
	c, err := Load(NeedSID | NeedAPIKey)
	if err == nil {
		t.Fatal("expected errors")
	}
	for _, s := range []string{err.Error(), fmtAll(c)} {
		if strings.Contains(s, key) {
			t.Fatalf("API key leaked: %s", s)
		}
	}
}

func TestRedisURLErrorsHidePassword(t *testing.T) {
	// Without a scheme, the text before "://" (or all of it) may be the
	// password itself (found by FuzzLoad).
	for _, u := range []string{"ftp://user:hunter2@host:1/0", ":hunter2@host:6379", "//u:hunter2@host"} {
		_, err := (Config{RedisURL: u}).RedisConnOpt()
		if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "REDIS_URL") {
			t.Fatalf("%s: got %v", u, err)
		}
	}
	for _, u := range []string{"redis://127.0.0.1:6379/0", "rediss://h:6380/1", "redis-socket:///tmp/r.sock",
		"redis-sentinel://127.0.0.1:26379?master=mymaster"} {
		if _, err := (Config{RedisURL: u}).RedisConnOpt(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if _, err := (Config{RedisClusterAddrs: []string{"127.0.0.1:7000"}}).RedisConnOpt(); err != nil {
		t.Errorf("cluster: %v", err)
	}
}

func TestSentinelURLPasswordReachesThePrimary(t *testing.T) {
	opt, err := Config{RedisURL: "redis-sentinel://app:s3cret@10.0.0.1:26379,10.0.0.2:26379?master=mymaster"}.RedisConnOpt()
	if err != nil {
		t.Fatal(err)
	}
	fo, ok := opt.(asynq.RedisFailoverClientOpt)
	if !ok {
		t.Fatalf("got %T, want asynq.RedisFailoverClientOpt", opt)
	}
	if fo.MasterName != "mymaster" || len(fo.SentinelAddrs) != 2 || fo.Username != "app" || fo.Password != "s3cret" ||
		fo.SentinelUsername != "app" || fo.SentinelPassword != "s3cret" {
		t.Errorf("got %+v: the URL's credentials must reach the primary (and the sentinels)", fo)
	}
	opt, err = Config{RedisURL: "redis-sentinel://10.0.0.1:26379?master=mymaster"}.RedisConnOpt()
	if fo := opt.(asynq.RedisFailoverClientOpt); err != nil || fo.Password != "" || fo.SentinelPassword != "" {
		t.Errorf("without credentials: %+v, %v", fo, err)
	}
}

func unsetenv(t *testing.T, k string) {
	t.Helper()
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}

// fmtAll prints c every way a careless log line might.
func fmtAll(c Config) string {
	return fmt.Sprintf("%v %+v %#v %s", c, c, c, c.APIKey)
}

// TestZeroIsKept: a variable set to 0 is 0, not its default, where 0 has a
// meaning of its own (no retries, keep forever, no cool-off).
func TestZeroIsKept(t *testing.T) {
	clearEnv(t)
	t.Setenv("RETRY_MAX", "0")
	t.Setenv("JOB_RETENTION", "0")
	t.Setenv("COOLOFF_THRESHOLD", "0")
	c, err := Load(0)
	if err != nil {
		t.Fatal(err)
	}
	if c.RetryMax != 0 || c.JobRetention != 0 || c.CoolOffThreshold != 0 {
		t.Errorf("RETRY_MAX, JOB_RETENTION, COOLOFF_THRESHOLD set to 0 loaded as %d, %v, %d", c.RetryMax, c.JobRetention, c.CoolOffThreshold)
	}
}

// TestLoadDoesNotShareDefaults: one Load's slices are its own, so that a
// caller changing them cannot change the next Load's defaults.
func TestLoadDoesNotShareDefaults(t *testing.T) {
	clearEnv(t)
	c, err := Load(0)
	if err != nil {
		t.Fatal(err)
	}
	c.RetryCodes[0] = "RCS999"
	if c2, _ := Load(0); c2.RetryCodes[0] != "RCS502" {
		t.Errorf("RETRY_CODES default changed to %v by a previous caller", c2.RetryCodes)
	}
}

// TestWeakTokensRefused: serve refuses an HTTP_TOKEN or HTTP_ADMIN_TOKEN
// shorter than MinTokenBytes or equal to a compose placeholder, naming the
// variable and never quoting the token; the worker does for the token of
// its METRICS_ADDR only; other commands do not look at the tokens.
func TestWeakTokensRefused(t *testing.T) {
	const strong = "0123456789abcdef" // MinTokenBytes exactly
	for _, c := range []struct {
		name, value, reason string
	}{
		{"HTTP_TOKEN", "short-token", "too short"},
		{"HTTP_TOKEN", strong[:MinTokenBytes-1], "too short"},
		{"HTTP_TOKEN", "change-me-producer", "placeholder"},
		{"HTTP_ADMIN_TOKEN", "admin-tok", "too short"},
		{"HTTP_ADMIN_TOKEN", "change-me-admin", "placeholder"},
		{"HTTP_ADMIN_TOKEN", "CHANGE-ME-PRODUCER", "placeholder"},
	} {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("HTTP_TOKEN", strong)
			t.Setenv("HTTP_ADMIN_TOKEN", strong+"-admin")
			t.Setenv(c.name, c.value)
			_, err := Load(NeedStrongTokens)
			if err == nil || !strings.HasPrefix(err.Error(), c.name+": ") || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("error %v, want one naming %s, saying %q", err, c.name, c.reason)
			}
			if strings.Contains(err.Error(), c.value) {
				t.Fatalf("the error quotes the token: %v", err)
			}
			if _, err := Load(0); err != nil {
				t.Fatalf("a command that serves nothing refused the token: %v", err)
			}
		})
	}
	clearEnv(t)
	if _, err := Load(NeedStrongTokens); err != nil {
		t.Fatalf("no tokens at all (loopback only, CheckListen's business): %v", err)
	}
	t.Setenv("HTTP_TOKEN", strong)
	t.Setenv("HTTP_ADMIN_TOKEN", "x-"+strong)
	if _, err := Load(NeedStrongTokens); err != nil {
		t.Fatalf("strong tokens refused: %v", err)
	}

	// The worker: only the token its METRICS_ADDR takes, only when set.
	clearEnv(t)
	t.Setenv("HTTP_TOKEN", "short")
	if _, err := Load(NeedStrongMetricsToken); err != nil {
		t.Fatalf("no METRICS_ADDR, yet the token was checked: %v", err)
	}
	t.Setenv("METRICS_ADDR", "127.0.0.1:9090")
	if _, err := Load(NeedStrongMetricsToken); err == nil || !strings.HasPrefix(err.Error(), "HTTP_TOKEN: ") {
		t.Fatalf("METRICS_ADDR behind a short HTTP_TOKEN: %v", err)
	}
	t.Setenv("HTTP_ADMIN_TOKEN", "change-me-admin")
	if _, err := Load(NeedStrongMetricsToken); err == nil || !strings.HasPrefix(err.Error(), "HTTP_ADMIN_TOKEN: ") || strings.Contains(err.Error(), "HTTP_TOKEN: ") {
		t.Fatalf("METRICS_ADDR behind the admin placeholder: %v", err)
	}
	t.Setenv("HTTP_ADMIN_TOKEN", strong)
	if _, err := Load(NeedStrongMetricsToken); err != nil {
		t.Fatalf("METRICS_ADDR takes HTTP_ADMIN_TOKEN, strong; HTTP_TOKEN is not its business: %v", err)
	}
}
