package testredis

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrInjected is the error of a command failed by Faults.
var ErrInjected = errors.New("testredis: injected fault")

// Faults is a go-redis hook that fails chosen commands before they are sent,
// so that a test can make Redis fail precisely (one script, N times) where
// killing the server would fail everything. Add it to a client with AddHook;
// with no fault armed it passes every command through.
type Faults struct {
	mu     sync.Mutex
	faults []*Fault
}

// Fault is one armed failure.
type Fault struct {
	f     *Faults
	match func(redis.Cmder) bool
	left  int // failures left; negative: until Off
	hits  int
}

// Fail fails the next n commands that match (every one until Off when n is
// negative) with ErrInjected, inside a pipeline too, where the other commands
// still run.
func (f *Faults) Fail(n int, match func(redis.Cmder) bool) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := &Fault{f: f, match: match, left: n}
	f.faults = append(f.faults, ft)
	return ft
}

// Off disarms the fault.
func (ft *Fault) Off() {
	ft.f.mu.Lock()
	defer ft.f.mu.Unlock()
	ft.left = 0
}

// Hits is how many commands the fault has failed.
func (ft *Fault) Hits() int {
	ft.f.mu.Lock()
	defer ft.f.mu.Unlock()
	return ft.hits
}

// armed reports whether any fault may still fail a command.
func (f *Faults) armed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ft := range f.faults {
		if ft.left != 0 {
			return true
		}
	}
	return false
}

// fails reports whether cmd is to fail, counting it against its fault.
func (f *Faults) fails(cmd redis.Cmder) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ft := range f.faults {
		if ft.left != 0 && ft.match(cmd) {
			ft.hits++
			if ft.left > 0 {
				ft.left--
			}
			return true
		}
	}
	return false
}

// DialHook is part of redis.Hook; dials are never failed.
func (f *Faults) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

// ProcessHook is part of redis.Hook.
func (f *Faults) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.fails(cmd) {
			cmd.SetErr(ErrInjected)
			return ErrInjected
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook is part of redis.Hook.
func (f *Faults) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !f.armed() {
			return next(ctx, cmds) // no allocation on the benchmarks' path
		}
		var rest []redis.Cmder
		var failed error
		for _, cmd := range cmds {
			if f.fails(cmd) {
				cmd.SetErr(ErrInjected)
				failed = ErrInjected
			} else {
				rest = append(rest, cmd)
			}
		}
		if len(rest) == 0 {
			return failed
		}
		if err := next(ctx, rest); err != nil {
			return err
		}
		return failed
	}
}

// Script matches the runs of a script (EVAL or EVALSHA, read-only variants
// too) whose keys include key and whose arguments include every one of args,
// compared as strings.
func Script(key string, args ...string) func(redis.Cmder) bool {
	return func(cmd redis.Cmder) bool {
		if !strings.HasPrefix(cmd.Name(), "eval") {
			return false
		}
		a := cmd.Args() // eval, script or sha, numkeys, keys..., args...
		if len(a) < 3 {
			return false
		}
		n, ok := a[2].(int)
		if !ok || len(a) < 3+n {
			return false
		}
		strs := func(vs []any) []string {
			out := make([]string, len(vs))
			for i, v := range vs {
				out[i], _ = v.(string)
			}
			return out
		}
		keys, rest := strs(a[3:3+n]), strs(a[3+n:])
		if !slices.Contains(keys, key) {
			return false
		}
		for _, want := range args {
			if !slices.Contains(rest, want) {
				return false
			}
		}
		return true
	}
}
