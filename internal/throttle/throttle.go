// Package throttle slows down guessing of secrets (the API's bearer tokens,
// the web UI's admin token) from one client address.
//
// An address may fail Free times; after that it is held off, and every
// attempt from it is refused unanswered, for a delay that doubles with each
// further failure up to Max. Refusing every attempt while held off, the
// right secret included, matters: answering the right one would tell the
// guesser which of its queued guesses won. A success forgets the address's
// failures, and so does a quiet period without any. Only failing addresses
// are remembered, at most MaxAddrs of them (the least recently failing are
// forgotten first), so memory stays bounded whatever the number of
// addresses.
//
// Addresses are the TCP peer's (Key): X-Forwarded-For is not trusted, as
// nothing says which proxy may set it; behind a reverse proxy every client
// shares the proxy's count.
package throttle

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/backoff"
)

// Defaults of Config's zero fields.
const (
	DefaultFree     = 5
	DefaultBase     = time.Second
	DefaultMax      = 10 * time.Minute
	DefaultQuiet    = time.Hour
	DefaultMaxAddrs = 10000
)

// Config sets a Throttle; a zero field takes its default.
type Config struct {
	// Free is how many failures an address may have before it is held off.
	Free int
	// Base is the first hold-off, after failure Free; each further failure
	// doubles it, up to Max.
	Base, Max time.Duration
	// Quiet is how long after its last failure an address is forgotten. It
	// is at least Max, so that the delays keep growing for a guesser that
	// waits each one out.
	Quiet time.Duration
	// MaxAddrs bounds how many addresses are remembered.
	MaxAddrs int
	// Now is the clock (time.Now when nil); tests set it.
	Now func() time.Time
}

// Throttle counts failures per address. Its methods are safe for
// concurrent use.
type Throttle struct {
	cfg    Config
	policy backoff.Policy

	mu    sync.Mutex
	addrs map[string]*list.Element // of *entry
	lru   *list.List               // most recently failing at the front
}

type entry struct {
	key      string
	fails    int
	last     time.Time // of the last failure
	heldTill time.Time
}

// New returns a Throttle with cfg's settings.
func New(cfg Config) *Throttle {
	if cfg.Free <= 0 {
		cfg.Free = DefaultFree
	}
	if cfg.Base <= 0 {
		cfg.Base = DefaultBase
	}
	if cfg.Max <= 0 {
		cfg.Max = DefaultMax
	}
	cfg.Max = max(cfg.Max, cfg.Base)
	if cfg.Quiet <= 0 {
		cfg.Quiet = DefaultQuiet
	}
	cfg.Quiet = max(cfg.Quiet, cfg.Max)
	if cfg.MaxAddrs <= 0 {
		cfg.MaxAddrs = DefaultMaxAddrs
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Throttle{cfg: cfg, policy: backoff.Policy{Base: cfg.Base, Max: cfg.Max},
		addrs: map[string]*list.Element{}, lru: list.New()}
}

// Try runs check for the address key unless key is held off, and counts
// its outcome: true forgets key's failures, false is one more. It returns
// check's result, or false and how long key is still held off (check not
// run). check runs under the throttle's lock, so that concurrent guesses
// from one address cannot all slip in before the first failure is counted:
// it must be quick (a constant-time comparison).
func (t *Throttle) Try(key string, check func() bool) (ok bool, wait time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	t.prune(now)
	el := t.addrs[key]
	if el != nil {
		if e := el.Value.(*entry); now.Before(e.heldTill) {
			return false, e.heldTill.Sub(now)
		}
	}
	if check() {
		if el != nil {
			t.forget(el)
		}
		return true, 0
	}
	if el == nil {
		if t.lru.Len() >= t.cfg.MaxAddrs {
			t.forget(t.lru.Back())
		}
		el = t.lru.PushFront(&entry{key: key})
		t.addrs[key] = el
	} else {
		t.lru.MoveToFront(el)
	}
	e := el.Value.(*entry)
	e.fails++
	e.last = now
	if e.fails >= t.cfg.Free {
		e.heldTill = now.Add(t.policy.Delay(e.fails-t.cfg.Free, 0))
	}
	return false, 0
}

// Len is how many addresses are remembered.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// prune forgets the addresses quiet for Quiet: the list is in order of last
// failure, so they are at its back.
func (t *Throttle) prune(now time.Time) {
	for el := t.lru.Back(); el != nil; el = t.lru.Back() {
		if now.Sub(el.Value.(*entry).last) < t.cfg.Quiet {
			return
		}
		t.forget(el)
	}
}

func (t *Throttle) forget(el *list.Element) {
	delete(t.addrs, el.Value.(*entry).key)
	t.lru.Remove(el)
}

// maxKey bounds a key made of an address that does not parse (a listener
// of another kind): such keys are never long enough to matter for memory.
const maxKey = 64

// Key is the address a request's failures are counted under, from its
// RemoteAddr (host:port): an IPv4 address, or an IPv6 address's /64 prefix,
// since one host commonly holds a whole /64 and could otherwise take a fresh
// address for every few guesses.
func Key(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		if len(host) > maxKey {
			host = host[:maxKey]
		}
		return host
	}
	a = a.WithZone("").Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
