package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Figure is one measured figure next to its same-run baseline.
type Figure struct {
	Name     string    `json:"name"`
	Unit     string    `json:"unit"`
	Value    float64   `json:"value"`
	Baseline string    `json:"baseline"`
	Base     float64   `json:"baseline_value"`
	Ratio    float64   `json:"ratio"`
	Runs     []float64 `json:"runs,omitempty"`
	BaseRuns []float64 `json:"baseline_runs,omitempty"`
	// RunRatios are the runs' own ratios (each run against the baseline
	// measured right after it), a check on Ratio when the machine is noisy.
	RunRatios []float64 `json:"run_ratios,omitempty"`
}

// Report is a bench run's figures and where they came from; its JSON form is
// what "rcslaunch bench --json" prints.
type Report struct {
	Machine     map[string]string `json:"machine"`
	Jobs        int               `json:"jobs"`
	Concurrency int               `json:"concurrency"`
	Runs        int               `json:"runs"`
	Figures     []Figure          `json:"figures"`
	// RedisCommands is the pipeline's Redis commands per successful job, by
	// command (median run), for where the round trips go.
	RedisCommands map[string]float64 `json:"redis_commands_per_job"`
	// Phases are the phases run, in order.
	Phases []string `json:"phases"`
	// Breakdowns split some figures by part: Redis commands by command,
	// memory by key.
	Breakdowns []Breakdown `json:"breakdowns,omitempty"`
}

// Breakdown is one figure split into named parts.
type Breakdown struct {
	Name  string             `json:"name"`
	Unit  string             `json:"unit"`
	Parts map[string]float64 `json:"parts"`
}

// print writes the breakdown on one line, its largest parts first (its name
// says the unit).
func (bd Breakdown) print(w io.Writer) {
	names := make([]string, 0, len(bd.Parts))
	for k := range bd.Parts {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if bd.Parts[names[i]] != bd.Parts[names[j]] {
			return bd.Parts[names[i]] > bd.Parts[names[j]]
		}
		return names[i] < names[j]
	})
	fmt.Fprintf(w, "%s:", bd.Name)
	for _, k := range names {
		fmt.Fprintf(w, " %s %.2f", k, bd.Parts[k])
	}
	fmt.Fprintf(w, "\n")
}

// Print writes the report for people: one line a figure, then the Redis
// commands per job by command.
func (rep *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "rcslaunch bench: %d jobs per throughput run, concurrency %d, median of %d runs\n", rep.Jobs, rep.Concurrency, rep.Runs)
	fmt.Fprintf(w, "machine: %s cores, %s, %s, load %s\n\n", rep.Machine["nproc"], rep.Machine["cpu"], rep.Machine["mem_total"], rep.Machine["loadavg"])
	for _, f := range rep.Figures {
		fmt.Fprintf(w, "%-44s %12.2f %-8s  vs %-58s %12.2f  ratio %.3f", f.Name, f.Value, f.Unit, f.Baseline, f.Base, f.Ratio)
		if len(f.RunRatios) > 0 {
			fmt.Fprintf(w, "  (runs: %.3f", f.RunRatios[0])
			for _, r := range f.RunRatios[1:] {
				fmt.Fprintf(w, ", %.3f", r)
			}
			fmt.Fprintf(w, ")")
		}
		fmt.Fprintf(w, "\n")
	}
	if len(rep.RedisCommands) > 0 {
		fmt.Fprintf(w, "\n")
		Breakdown{Name: "pipeline Redis commands per job, by command", Unit: "commands", Parts: rep.RedisCommands}.print(w)
	}
	for _, bd := range rep.Breakdowns {
		fmt.Fprintf(w, "\n")
		bd.print(w)
	}
}

// fig is the figure of the medians of runs and of their baseline's runs.
func fig(name, unit string, runs []float64, baseline string, base []float64) Figure {
	v, bb := median(runs), median(base)
	f := Figure{Name: name, Unit: unit, Value: v, Baseline: baseline, Base: bb, Ratio: v / bb,
		Runs: runs, BaseRuns: base}
	if len(runs) > 1 && len(runs) == len(base) {
		for i := range runs {
			f.RunRatios = append(f.RunRatios, runs[i]/base[i])
		}
	}
	return f
}

func median(xs []float64) float64 { return quantile(xs, 0.5) }

// quantile is the nearest-rank quantile of xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// mallocs is the process's heap allocations so far.
func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// machine describes where the figures came from.
func machine() map[string]string {
	m := map[string]string{"nproc": strconv.Itoa(runtime.NumCPU())}
	if v, ok := procField("/proc/cpuinfo", "model name"); ok {
		m["cpu"] = v
	}
	if v, ok := procField("/proc/meminfo", "MemTotal"); ok {
		m["mem_total"] = v
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m["loadavg"] = strings.TrimSpace(string(b))
	}
	return m
}

// procField is the value of the first "key: value" line of a /proc file
// whose key is key.
func procField(path, key string) (string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}
