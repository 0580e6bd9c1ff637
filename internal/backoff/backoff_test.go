package backoff

import (
	"math"
	"testing"
	"time"
)

func TestDelayDoublesUpToMax(t *testing.T) {
	p := Policy{Base: time.Second, Max: 5 * time.Minute}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
	for n, w := range want {
		if got := p.Delay(n, 0); got != w*time.Second {
			t.Errorf("Delay(%d, 0) = %v, want %v", n, got, w*time.Second)
		}
	}
}

func TestDelayJitterStaysWithinBounds(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for n := 0; n < 10; n++ {
		full := p.Delay(n, 0)
		for _, u := range []float64{0, 0.1, 0.5, 0.999999} {
			got := p.Delay(n, u)
			if got > full || got < full-time.Duration(float64(full)*Jitter)-1 {
				t.Errorf("Delay(%d, %v) = %v, outside [%v, %v]", n, u, got, full*3/4, full)
			}
		}
	}
	for i := 0; i < 1000; i++ {
		if d := p.Next(i % 20); d <= 0 || d > p.Max {
			t.Fatalf("Next = %v, outside (0, %v]", d, p.Max)
		}
	}
}

func TestDelayNeverOverflows(t *testing.T) {
	p := Policy{Base: time.Duration(math.MaxInt64 / 3), Max: time.Duration(math.MaxInt64)}
	for _, n := range []int{0, 1, 2, 62, 63, 64, 1000, math.MaxInt32} {
		if d := p.Delay(n, 0); d <= 0 {
			t.Errorf("Delay(%d) = %v, want positive", n, d)
		}
	}
	small := Policy{Base: time.Millisecond, Max: time.Hour}
	if d := small.Delay(math.MaxInt, 0); d != time.Hour {
		t.Errorf("Delay(MaxInt) = %v, want the cap", d)
	}
}

func TestDelayEdgeCases(t *testing.T) {
	if d := (Policy{}).Delay(3, 0.5); d != 0 {
		t.Errorf("zero policy: %v", d)
	}
	if d := (Policy{Base: time.Second, Max: time.Millisecond}).Delay(5, 0); d != time.Second {
		t.Errorf("max below base: %v, want base", d)
	}
	if d := (Policy{Base: time.Second, Max: time.Minute}).Delay(0, 7); d != time.Second {
		t.Errorf("u out of range: %v", d)
	}
}

func FuzzDelay(f *testing.F) {
	f.Add(int64(time.Second), int64(5*time.Minute), 3, 0.5)
	f.Add(int64(1), int64(math.MaxInt64), 1<<30, 0.99)
	f.Fuzz(func(t *testing.T, base, max int64, n int, u float64) {
		p := Policy{Base: time.Duration(base), Max: time.Duration(max)}
		d := p.Delay(n, u)
		if base <= 0 {
			if d != 0 {
				t.Fatalf("non-positive base gave %v", d)
			}
			return
		}
		limit := p.Max
		if limit < p.Base {
			limit = p.Base
		}
		if d < 0 || d > limit {
			t.Fatalf("Delay(%d, %v) = %v outside [0, %v]", n, u, d, limit)
		}
	})
}
