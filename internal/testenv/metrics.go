package testenv

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Gauges reads the gauge called name from g, by the value of its label
// label: rcslaunch_effective_rate by "sid", say.
func Gauges(t testing.TB, g prometheus.Gatherer, name, label string) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}
