package workerenv

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
	"github.com/rcslaunch/rcslaunch/worker"
)

// envConfig is the single-SID environment whose values stand for the
// fields an account leaves out, with the accounts file path.
func envConfig(path string) config.Config {
	return config.Config{AccountsFile: path, Pod: "na", RateLimit: 7, RateBurst: 3, MaxInFlight: 4, RetryMax: 2}
}

// writeFile writes data to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAccounts(t *testing.T) {
	t.Setenv("RCSLAUNCH_TEST_KEY_A", "key-of-a")
	dir := t.TempDir()
	writeFile(t, dir, "b.key", "key-of-b\n")
	path := writeFile(t, dir, "accounts.yaml", `
- sid: ACCOUNTA0001
  api_key_env: RCSLAUNCH_TEST_KEY_A
- sid: ACCOUNTB0002
  pod: in
  api_key_file: b.key
  rate: 50
  burst: 20
  max_in_flight: 9
  retry_max: 0
`)
	got, err := Accounts(envConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	want := []worker.Account{
		{SID: "ACCOUNTA0001", APIKey: "key-of-a", Pod: "na", RateLimit: 7, RateBurst: 3, MaxInFlight: 4, RetryMax: 2},
		{SID: "ACCOUNTB0002", APIKey: "key-of-b", Pod: "in", RateLimit: 50, RateBurst: 20, MaxInFlight: 9, RetryMax: 0},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Accounts:\n got %+v\nwant %+v", got, want)
	}

	if got, err := Accounts(envConfig("")); got != nil || err != nil {
		t.Errorf("without ACCOUNTS_FILE: %v, %v; want nil, nil", got, err)
	}
	bad := writeFile(t, dir, "bad.yaml", "- sid: ACCOUNTA0001\n  api_key_env: RCSLAUNCH_TEST_NO_SUCH_KEY\n")
	if got, err := Accounts(envConfig(bad)); err == nil || got != nil {
		t.Errorf("a key variable unset: %v, %v; want an error", got, err)
	}
	if _, err := Accounts(envConfig(filepath.Join(dir, "missing.yaml"))); err == nil {
		t.Error("a missing file: no error")
	}

	// Options carries them over.
	opts, err := Options(envConfig(path), asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, nil)
	if err != nil || !slices.Equal(opts.Accounts, want) {
		t.Errorf("Options' accounts: %+v, %v", opts.Accounts, err)
	}
	if _, err := Options(envConfig(bad), asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, nil); err == nil {
		t.Error("Options with a bad accounts file: no error")
	}
}

// TestReload: a change of the accounts file is put in service; a file that
// does not load is logged and changes nothing.
func TestReload(t *testing.T) {
	t.Setenv("RCSLAUNCH_TEST_KEY", "key-of-all")
	dir := t.TempDir()
	file := func(accounts ...string) string {
		var b strings.Builder
		for _, a := range accounts {
			b.WriteString("- sid: " + a + "\n  api_key_env: RCSLAUNCH_TEST_KEY\n")
		}
		return b.String()
	}
	path := writeFile(t, dir, "accounts.yaml", file("ACCOUNTA0001"))
	c := envConfig(path)
	logs := &testenv.SyncBuffer{}
	log := zerolog.New(logs)
	reg := prometheus.NewRegistry()
	opts, err := Options(c, asynq.RedisClientOpt{Addr: testredis.Start(t).Addr()}, &log)
	if err != nil {
		t.Fatal(err)
	}
	opts.Metrics = reg
	w, err := worker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Reload(ctx, c, w, log)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	// waitLog waits for the n-th log line holding all of parts.
	waitLog := func(n int, parts ...string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			found := 0
			for _, line := range strings.Split(logs.String(), "\n") {
				if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
					found++
				}
			}
			if found >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no log line %d with %q after 20 s; log:\n%s", n, parts, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wantRates := func(want map[string]float64) {
		t.Helper()
		if got := testenv.Gauges(t, reg, "rcslaunch_effective_rate", "sid"); !maps.Equal(got, want) {
			t.Fatalf("accounts' rates: %v, want %v", got, want)
		}
	}
	wantRates(map[string]float64{"ACCOUNTA0001": 7})

	writeFile(t, dir, "accounts.yaml", file("ACCOUNTA0001", "ACCOUNTB0002"))
	waitLog(1, "accounts file reloaded", `"added":["ACCOUNTB0002"]`, `"removed":[]`)
	wantRates(map[string]float64{"ACCOUNTA0001": 7, "ACCOUNTB0002": 7})

	writeFile(t, dir, "accounts.yaml", file("ACCOUNTA0001", "ACCOUNTB0002", "bad sid!"))
	waitLog(1, "accounts not reloaded", "bad sid!")
	wantRates(map[string]float64{"ACCOUNTA0001": 7, "ACCOUNTB0002": 7})

	// The next good file is told apart from the accounts served, not from
	// the file that failed.
	writeFile(t, dir, "accounts.yaml", file("ACCOUNTB0002")+"  rate: 11\n"+file("ACCOUNTC0003"))
	waitLog(1, "accounts file reloaded", `"added":["ACCOUNTC0003"]`, `"removed":["ACCOUNTA0001"]`, `"changed":["ACCOUNTB0002"]`)
	wantRates(map[string]float64{"ACCOUNTB0002": 11, "ACCOUNTC0003": 7})
	if strings.Contains(logs.String(), "key-of-all") {
		t.Error("the log holds a key")
	}
}
