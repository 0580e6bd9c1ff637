package bench

import (
	"bytes"
	"os"
	"path/filepath"
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
