package throttle

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for the throttle.
type clock struct{ t time.Time }

func (c *clock) now() time.Time                  { return c.t }
func (c *clock) add(d time.Duration)             { c.t = c.t.Add(d) }
func newClock() *clock                           { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }
func pass() bool                                 { return true }
func fail() bool                                 { return false }
func newThrottle(c *clock, cfg Config) *Throttle { cfg.Now = c.now; return New(cfg) }

// mustRun fails unless Try runs check for key (and returns its answer).
func mustRun(t *testing.T, th *Throttle, key string, check func() bool) {
	t.Helper()
	ran := false
	ok, wait := th.Try(key, func() bool { ran = true; return check() })
	if !ran || wait != 0 || ok != check() {
		t.Fatalf("%s: Try = %v, %v (check ran: %v), want check run", key, ok, wait, ran)
	}
}

// mustHold fails unless Try refuses key for want without running check.
func mustHold(t *testing.T, th *Throttle, key string, want time.Duration) {
	t.Helper()
	ok, wait := th.Try(key, func() bool { t.Fatalf("%s: check ran while held off", key); return true })
	if ok || wait != want {
		t.Fatalf("%s: Try = %v, %v, want held off for %v", key, ok, wait, want)
	}
}

func TestHeldOffAfterFreeFailuresEvenWithTheRightSecret(t *testing.T) {
	c := newClock()
	th := newThrottle(c, Config{})
	for i := 0; i < DefaultFree; i++ {
		mustRun(t, th, "192.0.2.1", fail)
	}
	// The right secret is refused too: answering it would say which guess won.
	mustHold(t, th, "192.0.2.1", time.Second)
	c.add(400 * time.Millisecond)
	mustHold(t, th, "192.0.2.1", 600*time.Millisecond)
	// Another address is not held off by this one's failures.
	mustRun(t, th, "192.0.2.2", pass)
	mustRun(t, th, "192.0.2.2", fail)
	c.add(600 * time.Millisecond)
	mustRun(t, th, "192.0.2.1", pass)
	// The success forgot the failures: Free more before the next hold-off.
	for i := 0; i < DefaultFree; i++ {
		mustRun(t, th, "192.0.2.1", fail)
	}
	mustHold(t, th, "192.0.2.1", time.Second)
}

func TestHoldOffDoublesUpToMax(t *testing.T) {
	c := newClock()
	th := newThrottle(c, Config{Free: 2, Base: time.Second, Max: 10 * time.Second})
	mustRun(t, th, "a", fail)
	mustRun(t, th, "a", fail)
	for _, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
		mustHold(t, th, "a", want*time.Second)
		c.add(want * time.Second)
		mustRun(t, th, "a", fail)
	}
}

func TestQuietPeriodForgets(t *testing.T) {
	c := newClock()
	th := newThrottle(c, Config{Free: 3, Quiet: time.Hour})
	mustRun(t, th, "a", fail)
	mustRun(t, th, "a", fail)
	c.add(time.Hour)
	if n := th.Len(); n != 1 {
		t.Fatalf("remembered %d addresses before pruning, want 1", n)
	}
	mustRun(t, th, "b", pass) // any call prunes
	if n := th.Len(); n != 0 {
		t.Fatalf("remembered %d addresses after the quiet period, want 0", n)
	}
	// Two more failures are not three: the first two were forgotten.
	mustRun(t, th, "a", fail)
	mustRun(t, th, "a", fail)
	mustRun(t, th, "a", pass)
}

func TestQuietIsAtLeastMax(t *testing.T) {
	c := newClock()
	th := newThrottle(c, Config{Free: 1, Base: time.Hour, Max: 4 * time.Hour, Quiet: time.Minute})
	mustRun(t, th, "a", fail)
	c.add(time.Hour)
	mustRun(t, th, "a", fail)
	c.add(time.Hour) // quiet for more than Quiet, less than Max: still counted
	mustHold(t, th, "a", time.Hour)
}

func TestMemoryIsBounded(t *testing.T) {
	c := newClock()
	th := newThrottle(c, Config{Free: 2, MaxAddrs: 100})
	mustRun(t, th, "first", fail)
	mustRun(t, th, "first", fail)
	for i := 0; i < 1000; i++ {
		mustRun(t, th, fmt.Sprint("addr-", i), fail)
		if n := th.Len(); n > 100 {
			t.Fatalf("remembers %d addresses, bound 100", n)
		}
	}
	// The least recently failing went first (remembered, its two failures
	// would hold it off); the most recent is still counted.
	mustRun(t, th, "first", pass)
	mustRun(t, th, "addr-999", fail)
	mustHold(t, th, "addr-999", time.Second)
}

// Concurrent guesses from one address cannot slip past the count: at most
// Free of them are checked.
func TestConcurrentGuessesAreCounted(t *testing.T) {
	th := New(Config{Free: 5, Base: time.Hour})
	var mu sync.Mutex
	checked := 0
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			th.Try("198.51.100.7", func() bool { mu.Lock(); checked++; mu.Unlock(); return false })
		}()
	}
	wg.Wait()
	if checked != 5 {
		t.Fatalf("%d guesses checked, want 5", checked)
	}
}

func TestKey(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.1:1234":                  "192.0.2.1",
		"192.0.2.1":                       "192.0.2.1",
		"[::ffff:192.0.2.1]:80":           "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443":      "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1%eth0]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:443":           "2001:db8:1:3::/64",
		"[::1]:8080":                      "::/64",
		"127.0.0.1:8080":                  "127.0.0.1",
		"@":                               "@",
		"":                                "",
	} {
		if got := Key(addr); got != want {
			t.Errorf("Key(%q) = %q, want %q", addr, got, want)
		}
	}
	if got := Key(strings.Repeat("x", 1000)); len(got) != maxKey {
		t.Errorf("an unparsable address gives a key of %d bytes, want %d", len(got), maxKey)
	}
}

// FuzzKey: Key never panics, its keys are bounded, and every IPv6 address
// of one /64 (with any port or zone) has the /64's key, which no other /64
// shares.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"192.0.2.1:1234", "[2001:db8::1]:443", "[fe80::1%eth0]:1", "[::ffff:10.0.0.1]:2",
		"::1", "1.2.3.4.5:6", "[", "]:80", "[::1]:", "@", ""} {
		f.Add(s, uint64(0))
	}
	f.Fuzz(func(t *testing.T, addr string, low uint64) {
		k := Key(addr)
		if len(k) > maxKey {
			t.Fatalf("Key(%q) = %d bytes", addr, len(k))
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Unmap().Is6() {
			return
		}
		b := a.WithZone("").As16()
		for i := 8; i < 16; i++ {
			b[i] = byte(low >> (8 * (i - 8)))
		}
		other := netip.AddrFrom16(b)
		if other.Is4In6() { // ::ffff:0:0/96 is IPv4's, keyed per address
			return
		}
		if Key(netip.AddrPortFrom(other, 9).String()) != k {
			t.Fatalf("%q and %v, in one /64, have different keys", addr, other)
		}
		b[7] ^= 1
		if next := netip.AddrFrom16(b); !next.Is4In6() && Key(next.String()) == k {
			t.Fatalf("%q and %v, in different /64s, share a key", addr, netip.AddrFrom16(b))
		}
	})
}
