package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, c := range []struct{ q, want float64 }{{0.5, 3}, {0.99, 5}, {0, 1}, {0.2, 1}, {0.21, 2}} {
		if got := quantile(xs, c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if xs[0] != 5 {
		t.Error("quantile sorted its input")
	}
	if quantile(nil, 0.5) != 0 || median([]float64{2, 1}) != 1 {
		t.Error("empty or even-length quantile")
	}
}

func TestFig(t *testing.T) {
	f := fig("n", "u", []float64{10, 30, 20}, "b", []float64{5, 10, 10})
	if f.Value != 20 || f.Base != 10 || f.Ratio != 2 {
		t.Errorf("medians: %+v", f)
	}
	if want := []float64{2, 3, 2}; len(f.RunRatios) != 3 || f.RunRatios[0] != want[0] || f.RunRatios[1] != want[1] || f.RunRatios[2] != want[2] {
		t.Errorf("run ratios %v, want %v", f.RunRatios, want)
	}
	if one := fig("n", "u", []float64{1}, "b", []float64{2}); one.RunRatios != nil {
		t.Errorf("one run has run ratios: %v", one.RunRatios)
	}
}

func TestCommandStats(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_get:calls=10,usec=5,usec_per_call=0.5\r\ncmdstat_xlen:calls=7,usec=1\r\n" +
		"cmdstat_info:calls=2,usec=1\r\ncmdstat_evalsha:calls=4,usec=9\r\nother:calls=1\r\n"
	before := parseCommandStats(info)
	if len(before) != 4 || before["get"] != 10 || before["evalsha"] != 4 {
		t.Fatalf("parsed %v", before)
	}
	after := map[string]int64{"get": 16, "xlen": 9, "info": 3, "evalsha": 4, "hset": 2}
	by, total := commandsSince(before, after, "xlen", "info")
	if total != 8 || by["get"] != 6 || by["hset"] != 2 || len(by) != 2 {
		t.Errorf("commandsSince = %v, %v", by, total)
	}
	if _, total := commandsSince(before, after, "info"); total != 10 {
		t.Errorf("commandsSince without xlen skipped: total %v, want 10", total)
	}
}

func TestCallRate(t *testing.T) {
	t0 := time.Unix(0, 0)
	var at []time.Time
	for i := 0; i <= 20; i++ { // 21 calls, one every 100 ms
		at = append(at, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	rate, window := callRate(at)
	if rate < 9.99 || rate > 10.01 || window != 10 {
		t.Errorf("callRate = %v, %d; want 10, 10", rate, window)
	}
}

func TestVmHWM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(path, []byte("Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, ok := vmHWM(path); !ok || n != 1234 {
		t.Errorf("vmHWM = %d, %v", n, ok)
	}
	if _, ok := vmHWM(filepath.Join(t.TempDir(), "none")); ok {
		t.Error("vmHWM of a missing file")
	}
	if n, ok := vmHWM("/proc/self/status"); !ok || n <= 0 {
		t.Errorf("vmHWM of this process = %d, %v", n, ok)
	}
}

func TestReportPrint(t *testing.T) {
	rep := &Report{Machine: map[string]string{"nproc": "2", "cpu": "C", "mem_total": "M", "loadavg": "L"},
		Jobs: 100, Concurrency: 4, Runs: 2,
		Figures:       []Figure{fig("pipeline throughput", "jobs/s", []float64{100, 200}, "bare", []float64{100, 100})},
		RedisCommands: map[string]float64{"evalsha": 2, "get": 5}}
	var out bytes.Buffer
	rep.Print(&out)
	lines := strings.Split(out.String(), "\n")
	if lines[0] != "rcslaunch bench: 100 jobs per throughput run, concurrency 4, median of 2 runs" ||
		lines[1] != "machine: 2 cores, C, M, load L" {
		t.Errorf("header:\n%s", &out)
	}
	if !strings.HasPrefix(lines[3], "pipeline throughput ") || !strings.HasSuffix(lines[3], "ratio 1.000  (runs: 1.000, 2.000)") {
		t.Errorf("figure line %q", lines[3])
	}
	if want := "pipeline Redis commands per job, by command: get 5.00 evalsha 2.00"; lines[5] != want {
		t.Errorf("commands line %q, want %q", lines[5], want)
	}
}

func TestOptionsCheck(t *testing.T) {
	ok := Options{Jobs: 1, Concurrency: 1, Runs: 1, Rows: 1, LatencySamples: 2, Executable: "x"}
	if err := ok.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, bad := range []func(*Options){
		func(o *Options) { o.Runs = 0 },
		func(o *Options) { o.LatencySamples = 1 },
		func(o *Options) { o.Executable = "" },
	} {
		o := ok
		bad(&o)
		if o.Check() == nil {
			t.Errorf("Check accepted %+v", o)
		}
	}
}

func TestOptionsCheckPhases(t *testing.T) {
	ok := Options{Jobs: 1, Concurrency: 1, Runs: 1, Rows: 1, LatencySamples: 2, Executable: "x",
		Accounts: 2, AccountRate: 20, AccountWindow: time.Second, AccountConcurrency: 4,
		BacklogJobs: 10, SmallJobs: 2, MemoryJobs: 10}
	if !slices.Equal(ok.phases(), DefaultPhases) || ok.runs(PhaseAccounts) {
		t.Errorf("default phases %v", ok.phases())
	}
	ok.Phases = []string{PhaseMemory, PhaseAccounts, PhaseBacklog}
	if err := ok.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, bad := range []func(*Options){
		func(o *Options) { o.Phases = []string{"nope"} },
		func(o *Options) { o.Phases = []string{PhaseBulk, PhaseBulk} },
		func(o *Options) { o.Accounts = 0 },
		func(o *Options) { o.AccountWindow = time.Millisecond },
		func(o *Options) { o.Phases, o.AccountRate = []string{PhaseBacklog}, 0 },
		func(o *Options) { o.SmallJobs = 1 },
		func(o *Options) { o.MemoryJobs = 0 },
	} {
		o := ok
		bad(&o)
		if o.Check() == nil {
			t.Errorf("Check accepted %+v", o)
		}
	}
	// The knobs of phases that do not run are not checked.
	o := ok
	o.Phases, o.Accounts, o.MemoryJobs = []string{PhaseThroughput}, 0, 0
	if err := o.Check(); err != nil {
		t.Errorf("Check of unused knobs: %v", err)
	}
}

func TestParseInfo(t *testing.T) {
	info := parseInfo("# CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.25\r\n\r\n# Keyspace\r\ndb0:keys=10,expires=4,avg_ttl=9\r\ndb3:keys=2,expires=1\r\n")
	if info["used_cpu_sys"] != "1.5" || info["used_cpu_user"] != "2.25" || len(info) != 4 {
		t.Errorf("parseInfo = %v", info)
	}
	if keys, expires := keyspaceTotals(info); keys != 12 || expires != 5 {
		t.Errorf("keyspaceTotals = %d, %d; want 12, 5", keys, expires)
	}
}

func TestParseCPULine(t *testing.T) {
	// user nice system idle iowait irq softirq steal
	busy, total := parseCPULine("cpu  100 5 50 800 40 2 3 0 0 0")
	if busy != 160 || total != 1000 {
		t.Errorf("parseCPULine = %d, %d; want 160, 1000", busy, total)
	}
	if busy, total := parseCPULine("cpu0 1 2 3 4 5"); busy != 0 || total != 0 {
		t.Errorf("a single core's line was read: %d, %d", busy, total)
	}
	a := cpuSample{at: time.Unix(0, 0), process: time.Second, busy: 100, total: 1000}
	b := cpuSample{at: time.Unix(2, 0), process: 3 * time.Second, redis: time.Second, busy: 600, total: 2000}
	u := b.since(a)
	if u.elapsed != 2*time.Second || u.process != 2*time.Second || u.redis != time.Second || u.busy != 0.5 {
		t.Errorf("since = %+v", u)
	}
	if proc, redis := u.perJob(1000); proc != 2000 || redis != 1000 {
		t.Errorf("perJob = %v, %v µs", proc, redis)
	}
}

func TestAccountStats(t *testing.T) {
	t0 := time.Unix(100, 0)
	every := func(n int, gap time.Duration) []time.Time {
		var at []time.Time
		for i := 0; i < n; i++ {
			at = append(at, t0.Add(time.Duration(i)*gap))
		}
		return at
	}
	list := benchAccounts("A", 2, 10)
	if list[0].SID != "A0000" || list[1].APIKey == list[0].APIKey || list[1].RateBurst != 1 {
		t.Fatalf("benchAccounts = %+v", list)
	}
	by := map[string][]time.Time{
		"A0000": every(40, 100*time.Millisecond), // 10/s for 4 s
		"A0001": every(20, 200*time.Millisecond), // 5/s for 4 s
	}
	st := accountStats(by, list, t0.Add(time.Second), t0.Add(3*time.Second))
	if st.calls != 30 || !slices.Equal(st.rates, []float64{5, 10}) || st.under != 1 || st.maxWindow != 10 {
		t.Errorf("accountStats = %+v", st)
	}
	// limit + burst + 1 = 12 calls: 1.1 s at 10/s, never reached at 5/s.
	if st.tightest != 1100*time.Millisecond {
		t.Errorf("accountStats: the shortest time for 12 calls %v, want 1.1s", st.tightest)
	}
	if span, ok := shortestSpan([]time.Time{t0, t0.Add(time.Second), t0.Add(1500 * time.Millisecond), t0.Add(1600 * time.Millisecond)}, 3); !ok || span != 600*time.Millisecond {
		t.Errorf("shortestSpan of 3 = %v, %v, want 600ms", span, ok)
	}
	if _, ok := shortestSpan([]time.Time{t0}, 2); ok {
		t.Error("shortestSpan of 2 among 1 time: ok")
	}
}

func TestBreakdownPrint(t *testing.T) {
	var out bytes.Buffer
	Breakdown{Name: "n (bytes)", Parts: map[string]float64{"b": 1, "a": 1, "c": 2.5}}.print(&out)
	if want := "n (bytes): c 2.50 a 1.00 b 1.00\n"; out.String() != want {
		t.Errorf("print = %q, want %q", out.String(), want)
	}
}
