package worker

import (
	"maps"
	"testing"
)

// TestLowestTerms: weights keep their shares, divided by their greatest
// common divisor.
func TestLowestTerms(t *testing.T) {
	for _, c := range []struct{ in, want map[string]int }{
		{map[string]int{"a": 3, "b": 3, "c": 3}, map[string]int{"a": 1, "b": 1, "c": 1}},
		{map[string]int{"a": 6, "b": 3, "c": 9}, map[string]int{"a": 2, "b": 1, "c": 3}},
		{map[string]int{"a": 6, "b": 3, "c": 1}, map[string]int{"a": 6, "b": 3, "c": 1}},
		{map[string]int{"a": 3, "f": 200}, map[string]int{"a": 3, "f": 200}},
		{map[string]int{"a": 4}, map[string]int{"a": 1}},
	} {
		if got := lowestTerms(c.in); !maps.Equal(got, c.want) {
			t.Errorf("lowestTerms(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
