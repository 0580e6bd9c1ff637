// Package accounts reads and checks ACCOUNTS_FILE: the Kaleyra accounts
// (SID, pod, where its API key is, its limits) that a worker serves.
//
// A worker serves the accounts it lists (internal/workerenv), and reads it
// again on SIGHUP or a change of the file, logging what changed (Diff).
//
// It does not import internal/config, which is to load the file with it:
// the single-SID variables reach it as Defaults, built by the caller.
package accounts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/baseurl"
	"github.com/rcslaunch/rcslaunch/internal/secret"
)

// Account is one Kaleyra account a worker serves. Its fields print as usual
// but APIKey, which prints as secret.Redacted.
type Account struct {
	SID         string
	Pod         string
	APIKey      secret.String
	Rate        float64
	Burst       int
	MaxInFlight int
	RetryMax    int
}

// Defaults are the values of an account's fields left out of the file: the
// single-SID environment's (config.Config's Pod, RateLimit, RateBurst,
// MaxInFlight and RetryMax).
type Defaults struct {
	Pod         string
	Rate        float64
	Burst       int
	MaxInFlight int
	RetryMax    int
}

// fields are the names an account may have, in the order they are checked
// and listed in errors.
var fields = []string{"sid", "pod", "api_key_env", "api_key_file", "rate", "burst", "max_in_flight", "retry_max"}

const (
	// maxKeyLen bounds a key read from a file: a key goes in a header of
	// every call, and a longer one is a wrong file, not a key.
	maxKeyLen = 4096
)

// Load reads the accounts file at path and checks it as Parse does, reading
// key files relative to the accounts file's directory.
func Load(path string, d Defaults, getenv func(string) string) ([]Account, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the prefix already
		}
		return nil, fmt.Errorf("ACCOUNTS_FILE %s: %w", path, err)
	}
	return Parse(path, data, d, getenv, os.ReadFile)
}

// Parse decodes data, the accounts file called name, as a JSON list of
// objects when its first non-space byte is '[' or '{', else as a YAML list
// of mappings, and checks every account. Fields left out take d's values.
// An account's key comes from the environment variable named by api_key_env
// (getenv) or from the file api_key_file (readFile; a relative path is
// relative to name's directory; one trailing newline is dropped).
//
// Every problem is reported, joined (errors.Join), each naming the file, the
// account (from 1, and its SID) and the field. No error holds a key.
func Parse(name string, data []byte, d Defaults, getenv func(string) string, readFile func(string) ([]byte, error)) ([]Account, error) {
	prefix := "ACCOUNTS_FILE " + name + ": "
	var entries []entry
	var err error
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a byte order mark, as some editors write
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{') {
		entries, err = decodeJSON(data)
	} else {
		entries, err = decodeYAML(data)
	}
	if err != nil {
		return nil, errors.New(prefix + err.Error())
	}
	if len(entries) == 0 {
		return nil, errors.New(prefix + "lists no accounts")
	}
	var errs []error
	accounts := make([]Account, 0, len(entries))
	seen := map[string]int{} // SID -> account number
	for i, e := range entries {
		c := checker{d: d, getenv: getenv, readFile: readFile, dir: filepath.Dir(name)}
		a := c.account(e)
		if n, dup := seen[a.SID]; dup && a.SID != "" {
			c.bad("sid", "also account %d's; an SID may be listed once", n)
		} else if a.SID != "" {
			seen[a.SID] = i + 1
		}
		label := fmt.Sprintf("account %d", i+1)
		if sid, ok := e.values["sid"]; ok && sid.kind == kindString {
			label += fmt.Sprintf(" (sid %s)", quote(sid.str, 40))
		}
		for _, p := range c.problems {
			errs = append(errs, errors.New(prefix+label+": "+p))
		}
		accounts = append(accounts, a)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return accounts, nil
}

// checker builds one account from its entry, collecting its problems.
type checker struct {
	d        Defaults
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	dir      string
	problems []string
}

func (c *checker) bad(field, format string, args ...any) {
	c.problems = append(c.problems, field+": "+fmt.Sprintf(format, args...))
}

func (c *checker) account(e entry) Account {
	c.problems = append(c.problems, e.problems...)
	var a Account
	if e.values == nil { // not an object: nothing more to say
		return a
	}
	sid, ok := c.str(e, "sid")
	if !e.has("sid") {
		c.bad("sid", "is required")
	} else if ok {
		if err := baseurl.CheckSID(sid); err != nil {
			c.bad("sid", "%v", err)
		}
	}
	a.SID = sid
	pod, ok := c.str(e, "pod")
	if !e.has("pod") {
		pod = c.d.Pod
	}
	if _, err := baseurl.ForPod(pod); err != nil && (ok || !e.has("pod")) {
		c.bad("pod", "%v%s", err, fromDefault(e.has("pod")))
	}
	a.Pod = pod
	a.APIKey = c.key(e)
	a.Rate = c.float(e, "rate", c.d.Rate, func(r float64) string {
		switch {
		case math.IsInf(r, 0):
			return fmt.Sprintf("must be finite, got %v", r)
		case !(r > 0): // NaN too
			return fmt.Sprintf("must be positive, got %v", r)
		}
		return ""
	})
	atLeast := func(min int) func(int64) string {
		return func(n int64) string {
			if n < int64(min) {
				return fmt.Sprintf("must be at least %d, got %d", min, n)
			}
			if n > math.MaxInt32 {
				return fmt.Sprintf("must be at most %d, got %d", math.MaxInt32, n)
			}
			return ""
		}
	}
	a.Burst = c.int(e, "burst", c.d.Burst, atLeast(1))
	a.MaxInFlight = c.int(e, "max_in_flight", c.d.MaxInFlight, atLeast(1))
	a.RetryMax = c.int(e, "retry_max", c.d.RetryMax, func(n int64) string {
		if n < 0 {
			return fmt.Sprintf("must not be negative, got %d", n)
		}
		return atLeast(0)(n)
	})
	return a
}

// key returns the account's API key from the variable or file its entry
// names. Its problems never hold the key.
func (c *checker) key(e entry) secret.String {
	env, byEnv := c.str(e, "api_key_env")
	file, byFile := c.str(e, "api_key_file")
	envGiven, fileGiven := e.has("api_key_env"), e.has("api_key_file")
	switch {
	case envGiven && fileGiven:
		c.bad("api_key_env, api_key_file", "give one, not both")
		return ""
	case !envGiven && !fileGiven:
		c.bad("api_key_env, api_key_file", "one is required: the variable or the file that holds the account's API key (the key itself is never in this file)")
		return ""
	case byEnv:
		if env == "" {
			c.bad("api_key_env", "empty; want the name of an environment variable")
			return ""
		}
		key := c.getenv(env)
		if strings.TrimSpace(key) == "" {
			c.bad("api_key_env", "$%s is unset or empty", quoteBare(env, 60))
			return ""
		}
		if msg := checkKey(key); msg != "" {
			c.bad("api_key_env", "$%s %s", quoteBare(env, 60), msg)
			return ""
		}
		return secret.String(key)
	case byFile:
		if file == "" {
			c.bad("api_key_file", "empty; want the path of a file holding the key")
			return ""
		}
		path := file
		if !filepath.IsAbs(path) {
			path = filepath.Join(c.dir, path)
		}
		data, err := c.readFile(path)
		if err != nil {
			c.bad("api_key_file", "%v", err)
			return ""
		}
		key := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		switch {
		case strings.TrimSpace(key) == "":
			c.bad("api_key_file", "%s is empty", quote(path, 200))
		case len(key) > maxKeyLen:
			c.bad("api_key_file", "%s holds %d bytes, more than the %d a key may have", quote(path, 200), len(key), maxKeyLen)
		default:
			if msg := checkKey(key); msg != "" {
				c.bad("api_key_file", "%s %s", quote(path, 200), msg)
				return ""
			}
			return secret.String(key)
		}
	}
	return "" // a wrong type, reported by str
}

// str returns the string field name of e, and whether it is there as a
// string; one there of another kind is a problem.
func (c *checker) str(e entry, name string) (string, bool) {
	v, ok := e.values[name]
	if !ok {
		return "", false
	}
	if v.kind == kindReported {
		return "", false
	}
	if v.kind != kindString {
		c.bad(name, "want a string, got %s%s", v.kind, quoteHint(v.kind))
		return "", false
	}
	return v.str, true
}

// float returns the number field name of e, or def when it is left out, and
// reports what check says of it.
func (c *checker) float(e entry, name string, def float64, check func(float64) string) float64 {
	v, given := e.values[name]
	n := def
	if given {
		if v.kind == kindReported {
			return 0
		}
		if v.kind != kindInt && v.kind != kindFloat {
			c.bad(name, "want a number, got %s", v.kind)
			return 0
		}
		n = v.f
	}
	if msg := check(n); msg != "" {
		c.bad(name, "%s%s", msg, fromDefault(given))
	}
	return n
}

// int is float for whole numbers.
func (c *checker) int(e entry, name string, def int, check func(int64) string) int {
	v, given := e.values[name]
	n := int64(def)
	if given {
		if v.kind == kindReported {
			return 0
		}
		if v.kind != kindInt {
			c.bad(name, "want a whole number, got %s", v.kind)
			return 0
		}
		n = v.i
	}
	if msg := check(n); msg != "" {
		c.bad(name, "%s%s", msg, fromDefault(given))
		return 0
	}
	return int(n)
}

// fromDefault says where a refused value came from when the file left it out.
func fromDefault(given bool) string {
	if given {
		return ""
	}
	return " (left out, so the environment's default)"
}

// quoteHint tells how to give a SID or path that YAML read as another kind.
func quoteHint(k kind) string {
	if k == kindInt || k == kindFloat || k == kindBool || k == kindNull {
		return " (quote it)"
	}
	return ""
}

// checkKey says what makes key unfit for a header value, or "". It never
// repeats the key.
func checkKey(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] < ' ' && key[i] != '\t' || key[i] == 0x7f {
			return "holds a control character (a stray newline?)"
		}
	}
	if !utf8.ValidString(key) {
		return "is not valid UTF-8"
	}
	return ""
}

// quote quotes s for an error, cut to about limit bytes.
func quote(s string, limit int) string {
	if len(s) > limit {
		n := limit
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}

// quoteBare is quote without the quotes when s needs none, for a variable
// name after '$'.
func quoteBare(s string, limit int) string {
	q := quote(s, limit)
	if q == `"`+s+`"` && !strings.ContainsAny(s, " \"") {
		return s
	}
	return q
}

// Diff compares two lists of accounts by SID (sid of each), for a reload:
// the SIDs only in next (added), only in prev (removed), and in both with
// any field changed, the key included (changed). Each list is sorted.
func Diff[A comparable](prev, next []A, sid func(A) string) (added, removed, changed []string) {
	old := make(map[string]A, len(prev))
	for _, a := range prev {
		old[sid(a)] = a
	}
	now := make(map[string]bool, len(next))
	for _, a := range next {
		now[sid(a)] = true
		switch o, ok := old[sid(a)]; {
		case !ok:
			added = append(added, sid(a))
		case o != a:
			changed = append(changed, sid(a))
		}
	}
	for _, a := range prev {
		if !now[sid(a)] {
			removed = append(removed, sid(a))
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	return added, removed, changed
}
