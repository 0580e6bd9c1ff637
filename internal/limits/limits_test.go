package limits

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/testredis"
)

// keys is sid's limiter keys; the tests call their client rdb, which hides
// the package inside them.
func keys(sid string) rdb.SIDKeys { return rdb.LimiterKeys(sid) }

// newLimiter starts a private redis-server and returns a Limiter over it and
// a plain client for looking at the keys.
func newLimiter(t testing.TB, cfg Config) (*Limiter, *redis.Client) {
	t.Helper()
	rdb := testredis.Start(t).Client()
	return mustNew(t, rdb, cfg), rdb
}

func mustNew(t testing.TB, rdb redis.UniversalClient, cfg Config) *Limiter {
	t.Helper()
	l, err := New(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustAcquire(t testing.TB, l *Limiter, sid string) *Slot {
	t.Helper()
	s, err := l.Acquire(context.Background(), sid)
	if err != nil {
		t.Fatalf("Acquire(%s): %v", sid, err)
	}
	return s
}

func mustRelease(t testing.TB, s *Slot, r Result) Events {
	t.Helper()
	ev, err := s.Release(context.Background(), r)
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	return ev
}

func mustState(t testing.TB, l *Limiter, sid string) State {
	t.Helper()
	st, err := l.State(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// deferred asserts that err is a *DeferredError for reason and returns it.
func deferred(t testing.TB, err error, reason string) *DeferredError {
	t.Helper()
	var d *DeferredError
	if !errors.As(err, &d) {
		t.Fatalf("got %v, want a *DeferredError (%s)", err, reason)
	}
	if !errors.Is(err, ErrDeferred) {
		t.Fatalf("errors.Is(%v, ErrDeferred) = false", err)
	}
	if d.Reason != reason {
		t.Fatalf("deferred for %q (%v), want %q", d.Reason, d, reason)
	}
	return d
}

// grantTime is when, on Redis's clock (µs), the script granted s: the
// slot's lease score minus the lease. It must be read before s is released.
func grantTime(t testing.TB, l *Limiter, rdb *redis.Client, s *Slot) int64 {
	t.Helper()
	score, err := rdb.ZScore(context.Background(), s.a.keys.InFlight(), s.token).Result()
	if err != nil {
		t.Fatalf("lease of a held slot: %v", err)
	}
	return int64(score) - s.a.cfg.Lease.Microseconds()
}

// redisNow is Redis's clock in µs.
func redisNow(t testing.TB, rdb *redis.Client) int64 {
	t.Helper()
	now, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now.UnixMicro()
}

// checkGCRA asserts the property the rate promises, for grant times (µs,
// Redis clock) in any order: n consecutive grants span at least
// (n-burst)·interval, so that no window of length w sees more than
// burst + w/interval of them.
func checkGCRA(t testing.TB, times []int64, rate float64, burst int) {
	t.Helper()
	ts := slices.Clone(times)
	slices.Sort(ts)
	interval := int64(math.Floor(1e6 / rate))
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			n := int64(j - i + 1)
			if min := (n - int64(burst)) * interval; ts[j]-ts[i] < min {
				t.Fatalf("%d grants within %dµs, GCRA allows at least %dµs (rate %v, burst %d)",
					n, ts[j]-ts[i], min, rate, burst)
			}
		}
	}
}

// maxInWindow is the most grants in any closed window of w µs.
func maxInWindow(times []int64, w int64) int {
	ts := slices.Clone(times)
	slices.Sort(ts)
	best, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j]-ts[i] <= w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

func TestNewAndDefaults(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	for _, rate := range []float64{0, -1} {
		if _, err := New(rdb, Config{Rate: rate}); err == nil {
			t.Errorf("New with rate %v: no error", rate)
		}
	}
	l := mustNew(t, rdb, Config{Rate: 20})
	want := Config{Rate: 20, Burst: 1, MaxInFlight: 5, Lease: 35 * time.Second, MaxWait: 2 * time.Second,
		MaxRateWait: 250 * time.Millisecond, MinRate: 1}
	if l.def != want {
		t.Errorf("defaults: got %+v, want %+v", l.def, want)
	}
	if l := mustNew(t, rdb, Config{Rate: 20, MinRate: 30}); l.def.MinRate != 1 {
		t.Errorf("MinRate above Rate: got %v, want Rate/20", l.def.MinRate)
	}
}

// Rate 20, burst 1, many goroutines for about 2s: never more than 21 grants
// in a second of Redis time, and at least 90% of the rate achieved.
func TestRateOverManyGoroutines(t *testing.T) {
	const (
		rate    = 20
		workers = 8
		run     = 2 * time.Second
	)
	l, rdb := newLimiter(t, Config{Rate: rate, Burst: 1, MaxInFlight: 2 * workers})
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()

	var (
		mu        sync.Mutex
		times     []int64
		deferrals atomic.Int64
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				s, err := l.Acquire(ctx, "AC1")
				switch {
				case errors.Is(err, ErrDeferred):
					deferrals.Add(1)
					continue
				case ctx.Err() != nil:
					if err == nil { // granted just as the run ended: still a grant
						break
					}
					return
				case err != nil:
					t.Errorf("Acquire: %v", err)
					return
				}
				at := grantTime(t, l, rdb, s)
				mu.Lock()
				times = append(times, at)
				mu.Unlock()
				mustRelease(t, s, Answered)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	n := len(times)
	slices.Sort(times)
	span := time.Duration(times[n-1]-times[0]) * time.Microsecond
	t.Logf("%d grants in %v (%d deferrals); Redis-clock span %v, %.2f/s between first and last",
		n, elapsed.Round(time.Millisecond), deferrals.Load(), span, float64(n-1)/span.Seconds())

	if got := maxInWindow(times, 1e6); got > rate+1 {
		t.Errorf("%d grants in one second of Redis time, want at most rate+burst = %d", got, rate+1)
	}
	checkGCRA(t, times, rate, 1)
	// A floor, not a speed goal: it catches a limiter that under-grants by
	// half (a wrong unit, a lost token) yet holds on a machine so loaded that
	// the goroutines cannot ask at the full rate. make bench measures the
	// rate achieved.
	if want := 0.5 * rate * run.Seconds(); float64(n) < want {
		t.Errorf("%d grants in %v, want at least half of %d/s = %.0f", n, run, rate, want)
	}
	if st := mustState(t, l, "AC1"); st.InFlight != 0 {
		t.Errorf("after every release: %d in flight", st.InFlight)
	}
}

// An idle account grants Burst calls at once, then one per interval.
func TestBurstThenPace(t *testing.T) {
	const rate, burst = 5.0, 5 // interval 200ms
	cfg := Config{Rate: rate, Burst: burst, MaxInFlight: 20, MaxWait: 50 * time.Millisecond}
	l, rdb := newLimiter(t, cfg)
	var times []int64
	grant := func(l *Limiter) {
		s := mustAcquire(t, l, "AC1")
		times = append(times, grantTime(t, l, rdb, s))
		mustRelease(t, s, Answered)
	}
	// MaxWait 50ms is shorter than the 200ms interval, so these only
	// succeed because the burst lets them go at once.
	for range burst {
		grant(l)
	}
	_, err := l.Acquire(context.Background(), "AC1")
	d := deferred(t, err, ReasonRate)
	if d.After <= 0 || d.After > 200*time.Millisecond {
		t.Errorf("after the burst: deferred for %v, want within (0, 200ms]", d.After)
	}

	// A limiter that may wait gets the next ones one interval apart.
	cfg.MaxWait = 2 * time.Second
	patient := mustNew(t, rdb, cfg)
	grant(patient)
	grant(patient)
	checkGCRA(t, times, rate, burst)
	if span := times[len(times)-1] - times[0]; span < 2*200_000 {
		t.Errorf("7 grants with burst 5 at 5/s within %dµs, want at least 400ms", span)
	}
}

// Two SIDs share neither rate tokens nor in-flight slots.
func TestSIDsAreIndependent(t *testing.T) {
	l, _ := newLimiter(t, Config{Rate: 1, Burst: 1, MaxInFlight: 1, MaxWait: 50 * time.Millisecond})
	a := mustAcquire(t, l, "A")
	_, err := l.Acquire(context.Background(), "A")
	deferred(t, err, ReasonInFlight)

	b := mustAcquire(t, l, "B") // A holds its only slot and spent its only token
	if st := mustState(t, l, "A"); st.InFlight != 1 {
		t.Errorf("A in flight: %d, want 1", st.InFlight)
	}
	if st := mustState(t, l, "B"); st.InFlight != 1 {
		t.Errorf("B in flight: %d, want 1", st.InFlight)
	}
	mustRelease(t, a, Answered)
	mustRelease(t, b, Answered)
	for _, sid := range []string{"A", "B"} {
		_, err := l.Acquire(context.Background(), sid)
		deferred(t, err, ReasonRate) // each spent its own token
	}
}

func TestInFlightCap(t *testing.T) {
	l, rdb := newLimiter(t, Config{Rate: 10000, Burst: 100, MaxInFlight: 3, MaxWait: 5 * time.Second})
	ctx := context.Background()
	held := []*Slot{mustAcquire(t, l, "AC1"), mustAcquire(t, l, "AC1"), mustAcquire(t, l, "AC1")}
	if st := mustState(t, l, "AC1"); st.InFlight != 3 {
		t.Fatalf("in flight: %d, want 3", st.InFlight)
	}

	type result struct {
		s   *Slot
		err error
	}
	fourth := make(chan result, 1)
	go func() {
		s, err := l.Acquire(ctx, "AC1")
		fourth <- result{s, err}
	}()
	select {
	case r := <-fourth:
		t.Fatalf("4th Acquire returned (%v, %v) while 3 slots are held", r.s, r.err)
	case <-time.After(150 * time.Millisecond):
	}
	released := redisNow(t, rdb)
	mustRelease(t, held[0], Answered)
	var r result
	select {
	case r = <-fourth:
	case <-time.After(3 * time.Second):
		t.Fatal("4th Acquire still waiting 3s after a release")
	}
	if r.err != nil {
		t.Fatalf("4th Acquire: %v", r.err)
	}
	at := grantTime(t, l, rdb, r.s)
	if at < released {
		t.Errorf("4th slot granted at %d, before the release at %d", at, released)
	}
	if at-released > 1e6 {
		t.Errorf("4th slot granted %dµs after the release, want it soon after", at-released)
	}
	for _, s := range append(held[1:], r.s) {
		mustRelease(t, s, Answered)
	}

	// Under concurrency: a counter raised after Acquire and lowered before
	// Release counts a subset of the slots Redis holds, so it never exceeds
	// the cap either.
	var (
		cur, peak, grants atomic.Int64
		wg                sync.WaitGroup
	)
	for range 12 {
		wg.Go(func() {
			for range 15 {
				s, err := l.Acquire(ctx, "AC1")
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				n := cur.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				if st := mustState(t, l, "AC1"); st.InFlight > 3 {
					t.Errorf("State: %d in flight, cap 3", st.InFlight)
				}
				time.Sleep(2 * time.Millisecond)
				cur.Add(-1)
				grants.Add(1)
				mustRelease(t, s, Answered)
			}
		})
	}
	wg.Wait()
	t.Logf("%d grants, at most %d held at once", grants.Load(), peak.Load())
	if p := peak.Load(); p > 3 {
		t.Errorf("%d slots held at once, cap 3", p)
	} else if p < 2 {
		t.Errorf("at most %d slot held at once by 12 goroutines: the cap is not being used", p)
	}
	if st := mustState(t, l, "AC1"); st.InFlight != 0 {
		t.Errorf("after every release: %d in flight", st.InFlight)
	}
}

// A slot whose holder died is reclaimed once its lease runs out.
func TestLeaseReclaimsAbandonedSlot(t *testing.T) {
	const lease = 300 * time.Millisecond
	cfg := Config{Rate: 1000, Burst: 10, MaxInFlight: 1, Lease: lease, MaxWait: 50 * time.Millisecond}
	l, rdb := newLimiter(t, cfg)
	dead := mustAcquire(t, l, "AC1") // never released: its process died
	died := grantTime(t, l, rdb, dead)

	_, err := l.Acquire(context.Background(), "AC1")
	deferred(t, err, ReasonInFlight)

	cfg.MaxWait = 3 * time.Second
	s := mustAcquire(t, mustNew(t, rdb, cfg), "AC1")
	if at := grantTime(t, l, rdb, s); at < died+lease.Microseconds() {
		t.Errorf("slot granted %dµs after the dead one, before its %v lease ran out", at-died, lease)
	}
	if st := mustState(t, l, "AC1"); st.InFlight != 1 {
		t.Errorf("in flight: %d, want 1 (the dead lease reclaimed)", st.InFlight)
	}
	mustRelease(t, s, Answered)
	if ev := mustRelease(t, dead, Answered); ev != (Events{}) { // late release of a reclaimed slot
		t.Errorf("release of a reclaimed slot: %+v", ev)
	}
}

func TestDeferredError(t *testing.T) {
	l, rdb := newLimiter(t, Config{Rate: 0.5, Burst: 1, MaxInFlight: 1, MaxWait: 50 * time.Millisecond})
	ctx := context.Background()
	s := mustAcquire(t, l, "AC1")

	_, err := l.Acquire(ctx, "AC1")
	d := deferred(t, err, ReasonInFlight)
	if d.After <= 0 {
		t.Errorf("in-flight deferral After = %v, want > 0", d.After)
	}
	mustRelease(t, s, Answered)

	_, err = l.Acquire(ctx, "AC1") // next token in 2s, MaxWait 50ms
	d = deferred(t, err, ReasonRate)
	if d.After <= time.Second || d.After > 2*time.Second {
		t.Errorf("rate deferral After = %v, want about 2s (the interval at 0.5/s)", d.After)
	}
	if msg := d.Error(); !strings.Contains(msg, ReasonRate) {
		t.Errorf("Error() = %q, want the reason in it", msg)
	}

	// A token further away than MaxRateWait is not waited for, however long
	// MaxWait: the job goes back at once, and its worker to other jobs.
	slow := mustNew(t, rdb, Config{Rate: 0.5, Burst: 1, MaxInFlight: 1, MaxWait: 10 * time.Second})
	start := time.Now()
	_, err = slow.Acquire(ctx, "AC1")
	if d := deferred(t, err, ReasonRate); d.After <= time.Second {
		t.Errorf("rate deferral After = %v, want about 2s", d.After)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("Acquire slept %v for a token 2s away; MaxRateWait is 250ms", waited)
	}

	// Cancelled while waiting for the token: ctx's error, no slot taken.
	patient := mustNew(t, rdb, Config{Rate: 0.5, Burst: 1, MaxInFlight: 1, MaxWait: 10 * time.Second, MaxRateWait: 10 * time.Second})
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	s, err = patient.Acquire(cctx, "AC1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire cancelled while waiting: (%v, %v), want context.Canceled", s, err)
	}
	if errors.Is(err, ErrDeferred) {
		t.Errorf("cancellation reported as a deferral: %v", err)
	}
	if st := mustState(t, l, "AC1"); st.InFlight != 0 {
		t.Errorf("in flight after a cancelled Acquire: %d", st.InFlight)
	}
}

func TestCoolOff(t *testing.T) {
	const duration = 300 * time.Millisecond
	cfg := Config{Rate: 10000, Burst: 100, MaxInFlight: 20, MaxWait: 50 * time.Millisecond,
		CoolOffThreshold: 3, CoolOffWindow: time.Second, CoolOffDuration: duration}
	l, rdb := newLimiter(t, cfg)
	ctx := context.Background()
	k := keys("AC1")

	slots := make([]*Slot, 4)
	for i := range slots {
		slots[i] = mustAcquire(t, l, "AC1")
	}
	for i, s := range slots[:3] {
		ev := mustRelease(t, s, GatewayError)
		if want := i == 2; ev.CoolOffStarted != want {
			t.Fatalf("gateway error %d: CoolOffStarted = %v, want %v", i+1, ev.CoolOffStarted, want)
		}
	}
	startedMs, err := rdb.Get(ctx, k.CoolOff()).Int64()
	if err != nil {
		t.Fatalf("cool-off flag: %v", err)
	}
	if n := rdb.Exists(ctx, k.GatewayErrors()).Val(); n != 0 {
		t.Errorf("gateway-error count still there after the cool-off started")
	}

	_, err = l.Acquire(ctx, "AC1")
	d := deferred(t, err, ReasonCoolOff)
	st := mustState(t, l, "AC1")
	if d.After <= 0 || d.After > duration {
		t.Errorf("cool-off deferral After = %v, want within (0, %v]", d.After, duration)
	}
	if st.CoolOff <= 0 || st.CoolOff > d.After+time.Millisecond {
		t.Errorf("State().CoolOff = %v just after a deferral for %v", st.CoolOff, d.After)
	}
	if st.InFlight != 1 {
		t.Errorf("State().InFlight = %d, want 1", st.InFlight)
	}
	// An error during the cool-off does not start another one.
	if ev := mustRelease(t, slots[3], GatewayError); ev.CoolOffStarted {
		t.Error("a gateway error during the cool-off started another one")
	}

	// The cool-off is never waited out in the process, whatever MaxWait.
	patientCfg := cfg
	patientCfg.MaxWait = 10 * time.Second
	patient := mustNew(t, rdb, patientCfg)
	_, err = patient.Acquire(ctx, "AC1")
	deferred(t, err, ReasonCoolOff)

	// After it, calls go again.
	var s *Slot
	for deadline := time.Now().Add(3 * time.Second); s == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("still no slot 3s into a %v cool-off: %v", duration, err)
		}
		time.Sleep(20 * time.Millisecond)
		if s, err = l.Acquire(ctx, "AC1"); err != nil {
			deferred(t, err, ReasonCoolOff)
		}
	}
	if at := grantTime(t, l, rdb, s); at < (startedMs-1)*1000+duration.Microseconds() {
		t.Errorf("granted %dµs after the cool-off started, before its %v ran out", at-startedMs*1000, duration)
	}
	if st := mustState(t, l, "AC1"); st.CoolOff != 0 {
		t.Errorf("State().CoolOff = %v after the cool-off", st.CoolOff)
	}
	mustRelease(t, s, Answered)
}

func TestCoolOffDisabled(t *testing.T) {
	l, rdb := newLimiter(t, Config{Rate: 10000, Burst: 100, MaxInFlight: 20, MaxWait: 50 * time.Millisecond,
		CoolOffThreshold: 0, CoolOffWindow: time.Second, CoolOffDuration: time.Minute})
	for range 10 {
		if ev := mustRelease(t, mustAcquire(t, l, "AC1"), GatewayError); ev.CoolOffStarted {
			t.Fatal("cool-off started with threshold 0")
		}
	}
	mustRelease(t, mustAcquire(t, l, "AC1"), Answered)
	if st := mustState(t, l, "AC1"); st.CoolOff != 0 {
		t.Errorf("State().CoolOff = %v with threshold 0", st.CoolOff)
	}
	k := keys("AC1")
	if n := rdb.Exists(context.Background(), k.CoolOff(), k.GatewayErrors()).Val(); n != 0 {
		t.Errorf("cool-off keys written with threshold 0: %d", n)
	}
}

// Only gateway errors count towards the cool-off; other results neither
// count nor reset the count.
func TestCoolOffCountsGatewayErrorsOnly(t *testing.T) {
	l, rdb := newLimiter(t, Config{Rate: 10000, Burst: 100, MaxInFlight: 20, MaxWait: 50 * time.Millisecond,
		CoolOffThreshold: 3, CoolOffWindow: 10 * time.Second, CoolOffDuration: time.Minute})
	var slots []*Slot
	for range 12 {
		slots = append(slots, mustAcquire(t, l, "AC1"))
	}
	results := []Result{GatewayError, GatewayError, Answered, Throttled, Unused, Answered, Throttled, Unused, Answered}
	for i, r := range results {
		if ev := mustRelease(t, slots[i], r); ev.CoolOffStarted {
			t.Fatalf("release %d (%v) started a cool-off", i, r)
		}
	}
	if n, err := rdb.Get(context.Background(), keys("AC1").GatewayErrors()).Int(); err != nil || n != 2 {
		t.Errorf("gateway-error count = %d, %v; want 2", n, err)
	}
	if st := mustState(t, l, "AC1"); st.CoolOff != 0 {
		t.Errorf("cool-off after 2 gateway errors: %v", st.CoolOff)
	}
	if ev := mustRelease(t, slots[len(results)], GatewayError); !ev.CoolOffStarted {
		t.Error("3rd gateway error in the window did not start the cool-off")
	}
}

func TestThrottleHalvesAndRecovers(t *testing.T) {
	const rate = 20.0
	cfg := Config{Rate: rate, Burst: 100, MaxInFlight: 100, MaxWait: 50 * time.Millisecond} // MinRate 1
	l, rdb := newLimiter(t, cfg)
	ctx := context.Background()
	k := keys("AC1")
	// Take every slot this test releases up front, at the full rate.
	var pool []*Slot
	for range 40 {
		pool = append(pool, mustAcquire(t, l, "AC1"))
	}
	release := func(r Result) Events {
		t.Helper()
		s := pool[0]
		pool = pool[1:]
		return mustRelease(t, s, r)
	}
	effective := func() float64 { t.Helper(); return mustState(t, l, "AC1").EffectiveRate }
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

	if got := effective(); got != rate {
		t.Fatalf("effective rate before any 429: %v, want %v", got, rate)
	}
	if ev := release(Answered); ev.Rate != 0 {
		t.Errorf("Answered at the full rate changed it to %v", ev.Rate)
	}
	for _, want := range []float64{10, 5, 2.5, 1.25, 1} {
		ev := release(Throttled)
		if !near(ev.Rate, want) {
			t.Errorf("Throttled: Events.Rate = %v, want %v", ev.Rate, want)
		}
		if got := effective(); !near(got, want) {
			t.Errorf("Throttled: State().EffectiveRate = %v, want %v", got, want)
		}
	}
	for range 2 { // at the floor: stays there, and nothing changed to report
		if ev := release(Throttled); ev.Rate != 0 {
			t.Errorf("Throttled at MinRate: Events.Rate = %v, want 0 (unchanged)", ev.Rate)
		}
		if got := effective(); !near(got, 1) {
			t.Errorf("Throttled at MinRate: effective rate %v, want 1", got)
		}
	}
	if ev := release(Unused); ev != (Events{}) {
		t.Errorf("Unused at a lowered rate: %+v", ev)
	}

	// Acquire paces at the effective rate (1/s), not the configured 20/s.
	paced := mustNew(t, rdb, Config{Rate: rate, Burst: 1, MaxInFlight: 100, MaxWait: 50 * time.Millisecond})
	if err := rdb.Del(ctx, k.TAT()).Err(); err != nil { // an idle bucket, same effective rate
		t.Fatal(err)
	}
	mustRelease(t, mustAcquire(t, paced, "AC1"), Unused)
	_, err := paced.Acquire(ctx, "AC1")
	if d := deferred(t, err, ReasonRate); d.After < 500*time.Millisecond {
		t.Errorf("at effective rate 1/s the next token is %v away, want about 1s", d.After)
	}
	if got := effective(); !near(got, 1) {
		t.Errorf("Unused releases moved the effective rate to %v", got)
	}

	// Successes raise it a tenth of the limit at most once a second: those
	// of calls whose slot was taken at the lowered rate. A slot taken before
	// the 429s only frees itself (a quiet release, which costs Redis far
	// less), even a second later.
	time.Sleep(1100 * time.Millisecond) // one step on Redis's own clock
	if ev := release(Answered); ev.Rate != 0 {
		t.Errorf("Answered of a slot taken at the full rate raised the lowered rate to %v", ev.Rate)
	}
	if got := effective(); !near(got, 1) {
		t.Errorf("Answered of a slot taken at the full rate moved the effective rate to %v", got)
	}
	answered := func() Events { // from a slot taken now, in an idle bucket
		t.Helper()
		if err := rdb.Del(ctx, k.TAT()).Err(); err != nil {
			t.Fatal(err)
		}
		return mustRelease(t, mustAcquire(t, l, "AC1"), Answered)
	}
	if ev := answered(); !near(ev.Rate, 3) {
		t.Errorf("Answered 1.1s after the last change: Events.Rate = %v, want 3", ev.Rate)
	}
	for _, want := range []float64{5, 7, 9, 11, 13, 15, 17, 19, 20} {
		if ev := answered(); ev.Rate != 0 { // within the second
			t.Errorf("second Answered within a second raised the rate to %v", ev.Rate)
		}
		if err := rdb.HSet(ctx, k.Rate(), "changed", 0).Err(); err != nil { // a second has passed
			t.Fatal(err)
		}
		ev := answered()
		if !near(ev.Rate, want) {
			t.Errorf("Answered: Events.Rate = %v, want %v", ev.Rate, want)
		}
		if got := effective(); !near(got, want) {
			t.Errorf("Answered: State().EffectiveRate = %v, want %v", got, want)
		}
	}
	if n := rdb.Exists(ctx, k.Rate()).Val(); n != 0 {
		t.Errorf("rate key still there at the full rate: %v", rdb.HGetAll(ctx, k.Rate()).Val())
	}
	if ev := answered(); ev.Rate != 0 {
		t.Errorf("Answered at the full rate: Events.Rate = %v", ev.Rate)
	}
	if got := effective(); got != rate {
		t.Errorf("effective rate after recovery %v, want exactly %v", got, rate)
	}
}

func TestReleaseTwiceAndUnused(t *testing.T) {
	cfg := Config{Rate: 10000, Burst: 100, MaxInFlight: 1, MaxWait: 50 * time.Millisecond,
		CoolOffThreshold: 1, CoolOffWindow: time.Second, CoolOffDuration: time.Minute}
	l, _ := newLimiter(t, cfg)
	ctx := context.Background()

	a := mustAcquire(t, l, "AC1")
	if ev := mustRelease(t, a, Throttled); ev.Rate != 5000 {
		t.Fatalf("Throttled: %+v", ev)
	}
	b := mustAcquire(t, l, "AC1") // holds the only slot
	for _, r := range []Result{Throttled, GatewayError, Answered} {
		if ev := mustRelease(t, a, r); ev != (Events{}) {
			t.Errorf("second Release(%v): %+v, want nothing", r, ev)
		}
	}
	st := mustState(t, l, "AC1")
	if st.EffectiveRate != 5000 || st.CoolOff != 0 || st.InFlight != 1 {
		t.Errorf("after a second Release: %+v, want rate 5000, no cool-off, 1 in flight", st)
	}
	_, err := l.Acquire(ctx, "AC1")
	deferred(t, err, ReasonInFlight) // b's slot is still held

	if ev := mustRelease(t, b, Unused); ev != (Events{}) {
		t.Errorf("Release(Unused): %+v", ev)
	}
	if st := mustState(t, l, "AC1"); st.InFlight != 0 || st.EffectiveRate != 5000 {
		t.Errorf("after Release(Unused): %+v, want the slot free and the rate unchanged", st)
	}
	mustRelease(t, mustAcquire(t, l, "AC1"), Unused)

	var nilSlot *Slot
	if ev, err := nilSlot.Release(ctx, Answered); err != nil || ev != (Events{}) {
		t.Errorf("Release of a nil slot: %+v, %v", ev, err)
	}
}

func TestStateReflectsKeys(t *testing.T) {
	l, rdb := newLimiter(t, Config{Rate: 100, Burst: 10, MaxInFlight: 5})
	ctx := context.Background()
	k := keys("AC1")
	if st := mustState(t, l, "AC1"); st != (State{EffectiveRate: 100}) {
		t.Errorf("fresh account: %+v", st)
	}
	a, b := mustAcquire(t, l, "AC1"), mustAcquire(t, l, "AC1")
	if st := mustState(t, l, "AC1"); st.InFlight != 2 {
		t.Errorf("InFlight = %d, want 2", st.InFlight)
	}
	if err := rdb.Set(ctx, k.CoolOff(), 1, 5*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, k.Rate(), "rate", 12.5, "changed", 0).Err(); err != nil {
		t.Fatal(err)
	}
	st := mustState(t, l, "AC1")
	if st.CoolOff <= 4*time.Second || st.CoolOff > 5*time.Second {
		t.Errorf("CoolOff = %v, want the flag's TTL (about 5s)", st.CoolOff)
	}
	if st.EffectiveRate != 12.5 {
		t.Errorf("EffectiveRate = %v, want 12.5", st.EffectiveRate)
	}
	if st.InFlight != 2 {
		t.Errorf("InFlight = %d, want 2", st.InFlight)
	}
	rdb.Del(ctx, k.CoolOff(), k.Rate())
	mustRelease(t, a, Answered)
	if st := mustState(t, l, "AC1"); st != (State{EffectiveRate: 100, InFlight: 1}) {
		t.Errorf("after the flag's removal and a release: %+v", st)
	}
	mustRelease(t, b, Answered)
}

// hashTag is the part of key Redis Cluster hashes: between the first '{' and
// the first '}' after it, when that is not empty.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

func TestKeysShareOneHashTag(t *testing.T) {
	const sid = "AC7f3b"
	cfg := Config{Rate: 10000, Burst: 100, MaxInFlight: 10, MaxWait: 50 * time.Millisecond,
		CoolOffThreshold: 2, CoolOffWindow: 10 * time.Second, CoolOffDuration: time.Minute}
	l, rdb := newLimiter(t, cfg)
	ctx := context.Background()

	// Put every key of the account in Redis at once.
	var slots []*Slot
	for range 5 {
		slots = append(slots, mustAcquire(t, l, sid)) // tat, inflight
	}
	mustRelease(t, slots[0], Throttled)    // rate
	mustRelease(t, slots[1], GatewayError) // gateway_errors
	if ev := mustRelease(t, slots[2], GatewayError); !ev.CoolOffStarted {
		t.Fatal("no cool-off") // cooloff
	}
	mustRelease(t, slots[3], GatewayError) // gateway_errors again
	mustState(t, l, sid)

	got, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(keys(sid).All()))
	if !slices.Equal(got, want) {
		t.Errorf("keys in Redis: %q, want %q", got, want)
	}
	for _, key := range append(got, keys(sid).All()...) {
		if !strings.HasPrefix(key, "rcslaunch:") {
			t.Errorf("key %q lacks the rcslaunch: prefix", key)
		}
		if tag := hashTag(key); tag != "sid:"+sid {
			t.Errorf("key %q hashes on %q, want the tag {sid:%s}", key, tag, sid)
		}
	}
	if other := keys("other"); hashTag(other.TAT()) == hashTag(want[0]) {
		t.Error("two SIDs share a hash tag")
	}
	mustRelease(t, slots[4], Answered)
}

// BenchmarkAcquireRelease is the cost of one uncontended Acquire and Release
// pair against a loopback Redis: two script round trips.
func BenchmarkAcquireRelease(b *testing.B) {
	l, _ := newLimiter(b, Config{Rate: 1e6, Burst: 1000, MaxInFlight: 5})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := l.Acquire(ctx, "AC1")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Release(ctx, Answered); err != nil {
			b.Fatal(err)
		}
	}
}

// TestQueueRelease: a release queued on a pipeline frees the slot once, also
// when Redis answers NOSCRIPT (a restart flushed the scripts: it did not run),
// and reports the same events as Release.
func TestQueueRelease(t *testing.T) {
	l, rdb := newLimiter(t, Config{Rate: 100, MaxInFlight: 2, CoolOffThreshold: 1,
		CoolOffWindow: time.Minute, CoolOffDuration: time.Minute})
	ctx := context.Background()
	for i, flush := range []bool{false, true} {
		sid := "AC" + strconv.Itoa(i)
		s := mustAcquire(t, l, sid)
		if flush {
			if err := rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		pipe := rdb.Pipeline()
		p := s.QueueRelease(ctx, pipe, GatewayError)
		again := s.QueueRelease(ctx, pipe, GatewayError) // released once only
		_, _ = pipe.Exec(ctx)
		ev, err := p.Events(ctx)
		if err != nil || !ev.CoolOffStarted {
			t.Fatalf("flush %v: Events = %+v, %v", flush, ev, err)
		}
		if ev, err := again.Events(ctx); err != nil || ev != (Events{}) {
			t.Fatalf("flush %v: second release: %+v, %v", flush, ev, err)
		}
		if st, err := l.State(ctx, sid); err != nil || st.InFlight != 0 {
			t.Fatalf("flush %v: %d slots held (%v)", flush, st.InFlight, err)
		}
	}
}

// BenchmarkAcquireQueueRelease is BenchmarkAcquireRelease with the release
// queued on a pipeline, as the worker sends it with the outcome's record.
func BenchmarkAcquireQueueRelease(b *testing.B) {
	l, rdb := newLimiter(b, Config{Rate: 1e6, Burst: 1000, MaxInFlight: 5})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := l.Acquire(ctx, "AC1")
		if err != nil {
			b.Fatal(err)
		}
		pipe := rdb.Pipeline()
		p := s.QueueRelease(ctx, pipe, Answered)
		_, _ = pipe.Exec(ctx)
		if _, err := p.Events(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// Each account has its own Config: one account at its rate limit, at its
// in-flight cap, in cool-off or throttled never defers another, and the
// default Config serves the SIDs given none.
func TestAccountsHaveTheirOwnLimits(t *testing.T) {
	l, _ := newLimiter(t, Config{Rate: 1, Burst: 1, MaxInFlight: 1, MaxWait: 50 * time.Millisecond})
	coolOff := func(c Config) Config {
		c.CoolOffThreshold, c.CoolOffWindow, c.CoolOffDuration = 1, time.Minute, time.Minute
		return c
	}
	if err := l.SetAccount("SMALL", coolOff(Config{Rate: 1, Burst: 1, MaxInFlight: 1, MaxWait: 50 * time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	if err := l.SetAccount("BIG", coolOff(Config{Rate: 10000, Burst: 100, MaxInFlight: 3, MaxWait: 50 * time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// SMALL at its in-flight cap and out of tokens; BIG goes up to its own cap.
	small := mustAcquire(t, l, "SMALL")
	_, err := l.Acquire(ctx, "SMALL")
	deferred(t, err, ReasonInFlight)
	var big []*Slot
	for range 3 {
		big = append(big, mustAcquire(t, l, "BIG"))
	}
	_, err = l.Acquire(ctx, "BIG")
	deferred(t, err, ReasonInFlight)
	// The default Config: a SID given none has its own single slot.
	other := mustAcquire(t, l, "OTHER")
	_, err = l.Acquire(ctx, "OTHER")
	deferred(t, err, ReasonInFlight)
	mustRelease(t, other, Answered)

	// SMALL's gateway error puts SMALL alone in cool-off; BIG's throttling
	// lowers BIG's rate alone.
	if ev := mustRelease(t, small, GatewayError); !ev.CoolOffStarted {
		t.Fatal("SMALL's gateway error did not start its cool-off")
	}
	_, err = l.Acquire(ctx, "SMALL")
	deferred(t, err, ReasonCoolOff)
	if ev := mustRelease(t, big[0], Throttled); ev.Rate != 5000 {
		t.Fatalf("BIG's 429: rate %v, want 5000", ev.Rate)
	}
	if st := mustState(t, l, "SMALL"); st.EffectiveRate != 1 || st.CoolOff <= 0 {
		t.Fatalf("SMALL's state: %+v; want rate 1, in cool-off", st)
	}
	if st := mustState(t, l, "BIG"); st.EffectiveRate != 5000 || st.CoolOff != 0 || st.InFlight != 2 {
		t.Fatalf("BIG's state: %+v; want rate 5000, no cool-off, 2 in flight", st)
	}
	for range 20 {
		s := mustAcquire(t, l, "BIG") // never deferred by SMALL's cool-off
		mustRelease(t, s, Answered)
	}
	for _, s := range big[1:] {
		mustRelease(t, s, Answered)
	}
}

// SetAccount changes an account's limits for its next Acquire: a slot taken
// before keeps the limits it was taken under, and an invalid Config changes
// nothing.
func TestSetAccountAppliesToNextAcquire(t *testing.T) {
	l, _ := newLimiter(t, Config{Rate: 10000, Burst: 100, MaxInFlight: 1, MaxWait: 50 * time.Millisecond})
	ctx := context.Background()
	wide := Config{Rate: 10000, Burst: 100, MaxInFlight: 3, MaxWait: 50 * time.Millisecond}
	if err := l.SetAccount("AC1", wide); err != nil {
		t.Fatal(err)
	}
	held := mustAcquire(t, l, "AC1")
	second := mustAcquire(t, l, "AC1")
	narrow := wide
	narrow.MaxInFlight = 2
	narrow.CoolOffThreshold, narrow.CoolOffWindow, narrow.CoolOffDuration = 1, time.Minute, time.Minute
	if err := l.SetAccount("AC1", narrow); err != nil {
		t.Fatal(err)
	}
	_, err := l.Acquire(ctx, "AC1")
	deferred(t, err, ReasonInFlight) // 2 held, the new cap
	if held.a.cfg.MaxInFlight != 3 || held.a.cfg.CoolOffThreshold != 0 {
		t.Fatalf("a held slot's limits changed: %+v", held.a.cfg)
	}
	// The held slot is released under the limits it was taken with: no cool-off.
	if ev := mustRelease(t, held, GatewayError); ev.CoolOffStarted {
		t.Fatal("a slot taken without cool-off started one")
	}
	mustRelease(t, second, Answered)

	for _, bad := range []Config{{Rate: 0}, {Rate: -1}, {Rate: math.NaN()}} {
		if err := l.SetAccount("AC1", bad); err == nil {
			t.Errorf("SetAccount(%+v): no error", bad)
		}
	}
	a := mustAcquire(t, l, "AC1")
	b := mustAcquire(t, l, "AC1")
	if a.a.cfg.MaxInFlight != 2 || a.a.cfg.Rate != 10000 {
		t.Fatalf("limits after refused Configs: %+v", a.a.cfg)
	}
	if ev := mustRelease(t, a, GatewayError); !ev.CoolOffStarted {
		t.Fatal("the new limits' cool-off did not start")
	}
	mustRelease(t, b, Answered)
}

// scriptStat sums field ("calls", or "usec": time spent) over the scripts
// Redis has run, EVALSHA and EVAL, from INFO commandstats. The commands a
// script calls are counted under their own names too, and left out.
func scriptStat(tb testing.TB, rdb *redis.Client, field string) int64 {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var sum int64
	for _, line := range strings.Split(info, "\n") {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || name != "cmdstat_evalsha" && name != "cmdstat_eval" {
			continue
		}
		for _, kv := range strings.Split(stats, ",") {
			if v, ok := strings.CutPrefix(kv, field+"="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				sum += n
			}
		}
	}
	return sum
}

// TestWaitersTakeTurns: many waiters of one account in one process ask Redis
// one at a time, so a grant costs about one acquire call, not one per
// waiter (all of them woke for the same token before).
func TestWaitersTakeTurns(t *testing.T) {
	l, rdb := newLimiter(t, Config{Rate: 100, Burst: 1, MaxInFlight: 100, MaxWait: 10 * time.Second})
	const waiters, each = 10, 5
	before := scriptStat(t, rdb, "calls")
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			for range each {
				s, err := l.Acquire(context.Background(), "AC1")
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Release(context.Background(), Answered); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	grants := waiters * each
	// Each grant: its release, its granting acquire, and about one refused
	// acquire (the turn's holder asks once, is told the wait, asks again).
	if calls := scriptStat(t, rdb, "calls") - before; calls > int64(4*grants) {
		t.Errorf("%d scripts for %d grants: waiters do not take turns", calls, grants)
	}
}

// TestWaitersAskWhenTheTokenComes: a grant's answer says when the rate's
// next token comes, and the next waiter sleeps until then rather than ask at
// once and be told so: one call after another cost two acquire calls each
// before, a refused one and the granting one.
func TestWaitersAskWhenTheTokenComes(t *testing.T) {
	l, rdb := newLimiter(t, Config{Rate: 50, Burst: 1, MaxInFlight: 10, MaxWait: 10 * time.Second})
	const grants = 20
	before := scriptStat(t, rdb, "calls")
	for range grants {
		mustRelease(t, mustAcquire(t, l, "AC1"), Answered)
	}
	// A sleep can end a little before Redis's clock says the token is in:
	// allow a refusal for one grant in four.
	if calls := scriptStat(t, rdb, "calls") - before; calls > grants+grants/4 {
		t.Errorf("%d scripts for %d grants one after another: waiters ask before the next token comes", calls, grants)
	}
}

// TestTimeoutAfterGrantSaysRate: a waiter whose time runs out in the queue
// for its turn behind a grant waits for the rate, and says so, not the
// reason of an older refusal (a cool-off would have its worker hold the
// account's queues and count a cool-off that is over).
func TestTimeoutAfterGrantSaysRate(t *testing.T) {
	l, _ := newLimiter(t, Config{Rate: 10, Burst: 1, MaxInFlight: 10, MaxWait: 100 * time.Millisecond})
	a := l.account("AC1")
	old := ReasonCoolOff
	a.reason.Store(&old)
	mustRelease(t, mustAcquire(t, l, "AC1"), Answered) // the next token is 100 ms away
	a.turn <- struct{}{}                               // another waiter holds the turn
	defer func() { <-a.turn }()
	_, err := l.Acquire(context.Background(), "AC1")
	deferred(t, err, ReasonRate)
}

// TestWaitersBeyondTheDeadlineLeaveAtOnce: at 10 calls a second, a waiter
// with more than 10 waiters ahead of it cannot be served within its 1 s,
// so it goes back to the queue at once, asking to come back about when the
// waiters ahead are served; only a waiter whose deadline passes in the
// wait is deferred by 100ms. The others are granted.
func TestWaitersBeyondTheDeadlineLeaveAtOnce(t *testing.T) {
	l, _ := newLimiter(t, Config{Rate: 10, Burst: 1, MaxInFlight: 100, MaxWait: time.Second})
	const waiters = 30
	var mu sync.Mutex
	var granted, early, late int
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			s, err := l.Acquire(context.Background(), "AC1")
			var d *DeferredError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				granted++
				_, _ = s.Release(context.Background(), Answered)
			case errors.As(err, &d) && d.After > 100*time.Millisecond:
				early++
				if d.After > 3*time.Second {
					t.Errorf("sent back for %v; at most %d waiters were ahead", d.After, waiters)
				}
			case errors.As(err, &d):
				late++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if early == 0 {
		t.Errorf("granted %d, deferred at their deadline %d, at once %d: no waiter left at once", granted, late, early)
	}
	if granted > 12 {
		t.Errorf("%d grants in about a second at 10/s", granted)
	}
}

// TestEarlyDeferralSaysRate: an account held up by its in-flight cap
// still sends back at once the waiters its rate cannot serve in time, and
// says the rate is why (what the worker holds the account's queues for),
// not the in-flight cap of the last refusal.
func TestEarlyDeferralSaysRate(t *testing.T) {
	ctx := context.Background()
	l, _ := newLimiter(t, Config{Rate: 10, Burst: 1, MaxInFlight: 1, MaxWait: time.Second})
	if _, err := l.Acquire(ctx, "AC1"); err != nil {
		t.Fatal(err)
	}
	var d *DeferredError
	if _, err := l.Acquire(ctx, "AC1"); !errors.As(err, &d) || d.Reason != ReasonInFlight {
		t.Fatalf("with the one slot held: %v, want a deferral for the in-flight cap", err)
	}
	var mu sync.Mutex
	early := 0
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			_, err := l.Acquire(ctx, "AC1")
			var d *DeferredError
			if !errors.As(err, &d) {
				t.Errorf("%v, want a deferral", err)
				return
			}
			if d.After > 100*time.Millisecond {
				mu.Lock()
				early++
				mu.Unlock()
				if d.Reason != ReasonRate {
					t.Errorf("sent back at once for %q, want %q", d.Reason, ReasonRate)
				}
			}
		})
	}
	wg.Wait()
	if early == 0 {
		t.Error("no waiter was sent back at once")
	}
}

// TestAcquireStart: the grant starts the job (its record says running,
// attempt 1); a refusal (here the one in-flight slot held) defers the job
// without starting it.
func TestAcquireStart(t *testing.T) {
	ctx := context.Background()
	l, c := newLimiter(t, Config{Rate: 1000, Burst: 10, MaxInFlight: 1, MaxWait: 50 * time.Millisecond})
	for _, id := range []string{"j1", "j2"} {
		if _, err := rdb.CreateJobs(ctx, c, []rdb.NewJob{{ID: id, SID: "AC1", AgentNo: "+15550001", Payload: []byte(`{}`)}}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	start := func(id string) rdb.StartArgs {
		return rdb.StartArgs{ID: id, SID: "AC1", AgentNo: "+15550001", MaxAttempts: 3}
	}
	slot, st, err := l.AcquireStart(ctx, "AC1", start("j1"))
	if err != nil || st != (rdb.StartReply{State: "running", Attempt: 1}) {
		t.Fatalf("AcquireStart(j1): %+v, %v", st, err)
	}
	if got := c.HGet(ctx, rdb.JobKey("j1"), "started_at").Val(); got == "" {
		t.Error("j1's record has no started_at")
	}
	_, st, err = l.AcquireStart(ctx, "AC1", start("j2"))
	var d *DeferredError
	if !errors.As(err, &d) || d.Reason != ReasonInFlight || st != (rdb.StartReply{}) {
		t.Fatalf("AcquireStart(j2) with the slot held: %+v, %v; want deferred for in_flight", st, err)
	}
	if state := c.HGet(ctx, rdb.JobKey("j2"), "state").Val(); state != "queued" {
		t.Errorf("j2 after a refusal: %s, want queued", state)
	}
	mustRelease(t, slot, Answered)
	if _, st, err = l.AcquireStart(ctx, "AC1", start("j2")); err != nil || st.State != "running" {
		t.Fatalf("AcquireStart(j2) once freed: %+v, %v", st, err)
	}
}

// A release that changes neither the cool-off nor the rate (no call was
// made, or an answered one while the rate was not lowered) only frees its
// slot, without the release script, inline or on a pipeline; one taken while
// throttling had lowered the rate runs the script, which raises it.
func TestQuietReleaseRunsNoScript(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	faults := &testredis.Faults{}
	c.AddHook(faults)
	l := mustNew(t, c, Config{Rate: 20, Burst: 100, MaxInFlight: 100})
	ctx := context.Background()
	inflight := keys("AC1").InFlight()
	answeredScript := faults.Fail(-1, testredis.Script(inflight, string(rdb.ReleaseAnswered)))
	unusedScript := faults.Fail(-1, testredis.Script(inflight, string(rdb.ReleaseUnused)))
	for _, r := range []Result{Answered, Unused} {
		if _, err := mustAcquire(t, l, "AC1").Release(ctx, r); err != nil {
			t.Errorf("quiet Release(%v): %v", r, err)
		}
		pipe := c.Pipeline()
		p := mustAcquire(t, l, "AC1").QueueRelease(ctx, pipe, r)
		_, _ = pipe.Exec(ctx)
		if _, err := p.Events(ctx); err != nil {
			t.Errorf("quiet QueueRelease(%v): %v", r, err)
		}
	}
	if n := answeredScript.Hits() + unusedScript.Hits(); n != 0 {
		t.Fatalf("quiet releases ran the release script %d times", n)
	}
	if st := mustState(t, l, "AC1"); st.InFlight != 0 {
		t.Fatalf("after quiet releases: %d slots held, want 0", st.InFlight)
	}
	answeredScript.Off()
	unusedScript.Off()

	// A 429 lowers the rate to 10, a second ago.
	mustRelease(t, mustAcquire(t, l, "AC1"), Throttled)
	if err := c.HSet(ctx, keys("AC1").Rate(), "changed", 0).Err(); err != nil {
		t.Fatal(err)
	}
	lowered := mustAcquire(t, l, "AC1")
	if !lowered.lowered {
		t.Fatal("a slot taken at a lowered rate is not marked so")
	}
	if ev := mustRelease(t, lowered, Answered); ev.Rate != 12 {
		t.Errorf("Answered of a slot taken at rate 10: Events.Rate %v, want 12", ev.Rate)
	}
}

// slowScripts is a go-redis hook that holds every script call for a moment
// and counts how many were in Redis at once.
type slowScripts struct{ cur, peak atomic.Int32 }

func (h *slowScripts) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *slowScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !strings.HasPrefix(cmd.Name(), "eval") {
			return next(ctx, cmd)
		}
		n := h.cur.Add(1)
		for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		defer h.cur.Add(-1)
		return next(ctx, cmd)
	}
}

func (h *slowScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestGrantsDoNotTakeTurns: while the account's last answer was a grant,
// the process's waiters ask Redis at once, not one round trip at a time,
// which bounded a worker's launches for one account (BENCHMARKS.md).
func TestGrantsDoNotTakeTurns(t *testing.T) {
	c := testredis.Start(t).Client()
	slow := &slowScripts{}
	c.AddHook(slow)
	l := mustNew(t, c, Config{Rate: 1e6, Burst: 1000, MaxInFlight: 100})
	mustRelease(t, mustAcquire(t, l, "AC1"), Answered) // a grant: the account is open
	slow.peak.Store(0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { mustRelease(t, mustAcquire(t, l, "AC1"), Answered) })
	}
	wg.Wait()
	if p := slow.peak.Load(); p < 2 {
		t.Errorf("8 waiters of an account granted each time asked Redis %d at a time, want several", p)
	}
}

// TestLateWaiterKeepsTheRate: a waiter asks for its token a little ahead of
// it and its call goes at the token's time, so that one caller after
// another at burst 1 gets the calls exactly one interval (with Margin) apart
// on Redis's clock. Asking when the token came, each call went late by the waiter's
// wake-up and a round trip, and the account lost that much of its rate
// each time.
func TestLateWaiterKeepsTheRate(t *testing.T) {
	const rate, calls = 50, 20
	l, c := newLimiter(t, Config{Rate: rate, Burst: 1, MaxInFlight: 10, MaxWait: 10 * time.Second})
	var times []int64
	for range calls {
		s := mustAcquire(t, l, "AC1")
		at := grantTime(t, l, c, s)
		if time.Now().Before(time.UnixMicro(at)) {
			t.Errorf("Acquire returned %v before its token's time", time.Until(time.UnixMicro(at)))
		}
		times = append(times, at)
		mustRelease(t, s, Answered)
	}
	checkGCRA(t, times, rate, 1)
	// A waiter woken more than reserveAhead late still loses: a loaded
	// machine may do that now and then.
	late := 0
	for i := 1; i < len(times); i++ {
		if times[i]-times[i-1] != rdb.Interval(rate, Margin).Microseconds() {
			late++
		}
	}
	if late > calls/4 {
		t.Errorf("%d of %d calls more than one interval after the one before: %v", late, calls-1, times)
	}
}
