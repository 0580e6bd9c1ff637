package rdb

import (
	"strings"
	"testing"
)

// TestKeyNames pins the key strings: they are stored data, and Redis Cluster
// slots follow from them.
func TestKeyNames(t *testing.T) {
	for got, want := range map[string]string{
		ResultsStream:            "rcslaunch:results",
		DeadLetters:              "rcslaunch:{rcslaunch:results}:dlq",
		Outcomes:                 "rcslaunch:{rcslaunch:results}:outcomes",
		BatchIndex:               "rcslaunch:{rcslaunch:results}:batches",
		JobKey("j:1"):            "rcslaunch:{rcslaunch:results}:job:j:1",
		AttemptsKey("j:1"):       "rcslaunch:{rcslaunch:results}:attempts:j:1",
		BatchKey("b1"):           "rcslaunch:{rcslaunch:results}:batch:b1",
		BatchJobsKey("b1"):       "rcslaunch:{rcslaunch:results}:batchjobs:b1",
		JobPrefix + "x":          JobKey("x"),
		LimiterKeys("AC1").TAT(): "rcslaunch:{sid:AC1}:tat",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
	k := LimiterKeys("AC1")
	want := []string{"rcslaunch:{sid:AC1}:tat", "rcslaunch:{sid:AC1}:inflight", "rcslaunch:{sid:AC1}:cooloff",
		"rcslaunch:{sid:AC1}:rate", "rcslaunch:{sid:AC1}:gateway_errors"}
	got := []string{k.TAT(), k.InFlight(), k.CoolOff(), k.Rate(), k.GatewayErrors()}
	if strings.Join(got, " ") != strings.Join(want, " ") || strings.Join(k.All(), " ") != strings.Join(want, " ") {
		t.Errorf("limiter keys %q (All %q), want %q", got, k.All(), want)
	}
	k.All()[0] = "changed"
	if k.TAT() != want[0] {
		t.Error("All shares its slice with the keys")
	}
}
