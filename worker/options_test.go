package worker_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/sim"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/testenv"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/worker"
)

// TestDefaultOptions: DefaultOptions holds the defaults docs/configuration.md lists for
// the environment variables.
func TestDefaultOptions(t *testing.T) {
	o := worker.DefaultOptions()
	if o.Pod != "in" || o.Timeout != 30*time.Second || o.RateLimit != 10 || o.RateBurst != 1 || o.MaxInFlight != 5 ||
		o.CoolOffThreshold != 5 || o.CoolOffWindow != 10*time.Second || o.CoolOffDuration != 30*time.Second ||
		o.Concurrency != 10 || o.RetryMax != 8 || o.RetryBaseDelay != time.Second || o.RetryMaxDelay != 5*time.Minute ||
		len(o.RetryCodes) != 1 || o.RetryCodes[0] != "RCS502" || o.JobRetention != 2160*time.Hour || o.ResultsMaxLen != 0 {
		t.Errorf("DefaultOptions() = %+v", o)
	}
}

// TestNegativeOptionsRefused: the fields whose zero is "none", "forever" or
// "off" have no meaning below zero.
func TestNegativeOptionsRefused(t *testing.T) {
	for name, mod := range map[string]func(*worker.Options){
		"RetryMax":         func(o *worker.Options) { o.RetryMax = -1 },
		"JobRetention":     func(o *worker.Options) { o.JobRetention = -time.Hour },
		"CoolOffThreshold": func(o *worker.Options) { o.CoolOffThreshold = -1 },
		"ResultsMaxLen":    func(o *worker.Options) { o.ResultsMaxLen = -1 },
	} {
		o := worker.Options{Redis: asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, SID: testenv.SID, APIKey: testenv.APIKey}
		mod(&o)
		_, err := worker.New(o)
		if !errors.Is(err, worker.ErrNegative) || !strings.Contains(err.Error(), "Options."+name) {
			t.Errorf("%s negative: %v, want ErrNegative naming Options.%s", name, err, name)
		}
	}
}

// TestZeroRetryMaxMeansNoRetry: RetryMax 0 is no retries, as RETRY_MAX=0.
func TestZeroRetryMaxMeansNoRetry(t *testing.T) {
	e := testenv.New(t)
	e.Sim.Script("500", sim.StepGateway, sim.StepGateway)
	id, _ := e.Enqueue(launchtest.Job("500"))
	e.StartWorker(func(o *worker.Options) { o.RetryMax = 0 })
	r := e.WaitFinished(id)[id]
	if r.State != store.StateDeadLettered || r.Code != "RCS502" {
		t.Errorf("with RetryMax 0: %s %s, want dead-lettered RCS502", r.State, r.Code)
	}
	if n := e.Sim.Stats().ByAgent["500"]; n != 1 {
		t.Errorf("with RetryMax 0: Kaleyra called %d times, want 1", n)
	}
}

// TestAccountPrintsNoKey: an Account printed any usual way shows its SID,
// never its key.
func TestAccountPrintsNoKey(t *testing.T) {
	a := worker.Account{SID: "HX12", APIKey: "k-very-secret-123", RateLimit: 5}
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v", a), fmt.Sprintf("%+v", a), fmt.Sprint([]worker.Account{a})} {
		if strings.Contains(s, "very-secret") || !strings.Contains(s, "HX12") {
			t.Errorf("printed as %q", s)
		}
	}
}
