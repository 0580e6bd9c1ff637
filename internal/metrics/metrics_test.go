package metrics

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSIDLabelsBounded: the first MaxSIDLabels accounts keep their own sid
// label, every later one shares OtherSID, and a known account keeps its own.
func TestSIDLabelsBounded(t *testing.T) {
	m := NewWorker(prometheus.NewRegistry())
	for i := range MaxSIDLabels {
		sid := fmt.Sprintf("SID%d", i)
		if got := m.SID(sid); got != sid {
			t.Fatalf("account %d: label %q, want its SID", i, got)
		}
	}
	if got := m.SID("ONEMORE"); got != OtherSID {
		t.Errorf("account past the bound: label %q, want %q", got, OtherSID)
	}
	if got := m.SID("SID7"); got != "SID7" {
		t.Errorf("known account: label %q, want its SID", got)
	}
}
