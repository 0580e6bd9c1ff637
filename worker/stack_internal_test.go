package worker

import "testing"

// deep needs about 24 KiB of stack, as a launch does, in frames of 1 KiB.
//
//go:noinline
func deep(n int) byte {
	var frame [1 << 10]byte
	frame[n%len(frame)] = byte(n)
	if n == 0 {
		return frame[0]
	}
	return deep(n-1) + frame[n%len(frame)]
}

// BenchmarkGrowStack compares a new goroutine running deep work as it is,
// its stack doubling on the way down, with one whose stack grows first: the
// asynq handler's case, a new goroutine per task.
func BenchmarkGrowStack(b *testing.B) {
	for _, c := range []struct {
		name string
		grow bool
	}{{"doubling", false}, {"grown-first", true}} {
		b.Run(c.name, func(b *testing.B) {
			done := make(chan byte)
			for b.Loop() {
				go func() {
					if c.grow {
						growStack()
					}
					done <- deep(24)
				}()
				<-done
			}
		})
	}
}
