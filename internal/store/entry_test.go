package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

// The tests in this file hold Attempt.entry to json.Marshal, which wrote the
// attempt log entries before it: the entries are read back by
// decodeAttempts and kept for as long as the record, so not a byte may
// differ, nor whether there is an error.

// checkEntry fails t unless a.entry() is json.Marshal(a), error included.
func checkEntry(t *testing.T, a Attempt) {
	t.Helper()
	got, gerr := a.entry()
	want, werr := json.Marshal(a)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) || !bytes.Equal(got, want) {
		t.Fatalf("entry() of %#v =\n%q, %v\nwant, as json.Marshal,\n%q, %v", a, got, gerr, want, werr)
	}
}

func TestAttemptEntryMatchesMarshal(t *testing.T) {
	now := time.Now() // a monotonic reading and the local zone, as the worker's
	east := time.FixedZone("east", 5*3600+30*60)
	west := time.FixedZone("", -(9*3600 + 59*60 + 59))
	for _, a := range []Attempt{
		{},
		{N: 1, Outcome: AttemptSucceeded, Code: "RCS902", Message: "ok", HTTPStatus: 200, StartedAt: now.Add(-time.Second), FinishedAt: now},
		{N: 3, Outcome: AttemptRetryable, Message: "Kaleyra said \"no\" to <agent> & co\n\ttab \x01 \x7f \u2028\u2029 \xff\xfe é 😀",
			HTTPStatus: 503, Uncertain: true, FinishedAt: t0},
		{N: -1, Outcome: "<>&", HTTPStatus: -500, FinishedAt: t0.In(east)},
		{N: math.MaxInt, HTTPStatus: math.MinInt, StartedAt: t0.Add(123456789).In(west), FinishedAt: t0.Add(100)},
		{Outcome: AttemptLost, StartedAt: time.Time{}.In(east), FinishedAt: time.Time{}.In(west)},
		// Years at the ends of RFC 3339's range, in UTC and shown in a zone
		// that takes them past it.
		{FinishedAt: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		{FinishedAt: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).In(west)},
		{FinishedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{FinishedAt: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).In(east)},
		{StartedAt: time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC), FinishedAt: t0},
		{StartedAt: t0, FinishedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		// Zone offsets at and past a day, which RFC 3339 cannot write.
		{FinishedAt: t0.In(time.FixedZone("", 24*3600-1))},
		{FinishedAt: t0.In(time.FixedZone("", -24*3600))},
		{FinishedAt: t0.In(time.FixedZone("", 100*3600))},
	} {
		checkEntry(t, a)
	}
}

// fuzzTime is a time for FuzzAttemptEntryMatchesMarshal: by kind, the zero
// time, or the instant sec, nsec in UTC, in the local zone, or at a fixed
// offset from UTC.
func fuzzTime(kind uint8, sec, nsec int64, offset int32) time.Time {
	t := time.Unix(sec, nsec)
	switch kind % 4 {
	case 0:
		return time.Time{}
	case 1:
		return t.UTC()
	case 2:
		return t
	}
	return t.In(time.FixedZone("fuzz", int(offset)))
}

func FuzzAttemptEntryMatchesMarshal(f *testing.F) {
	year0 := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	year9999 := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	zero := time.Time{}.Unix()
	texts := []string{"", "ok", AttemptSucceeded, "RCS902", "<b>Tom & Jerry</b>", "\"quoted\" \\ back",
		"\x00\x01\x1f\x7f\b\f\n\r\t", "\u2028\u2029\u0085", "bad \xff utf8 \xed\xa0\x80 cut \xe2\x80", "é 😀"}
	for i, s := range texts {
		u := texts[(i+3)%len(texts)]
		f.Add(i, 200, s, u, s+u, i%2 == 0, t0.Unix(), t0.Unix()+1, int64(i*123456789), int32(i*3600), uint8(i))
	}
	for _, sec := range []int64{year0, year0 - 1, year9999, year9999 + 1, zero, 0, -1} {
		for _, off := range []int32{0, 1, -1, 3600, -3600, 86399, -86399, 86400, -86400, 1 << 30} {
			f.Add(1, 0, "", "", "", false, sec, sec, int64(999999999), off, uint8(3<<2|3))
			f.Add(-1, -1, "x", "", "", true, t0.Unix(), sec, int64(1), off, uint8(3<<2|1))
		}
	}
	f.Add(math.MinInt, math.MaxInt, "", "", "", false, int64(math.MinInt64), int64(math.MaxInt64), int64(math.MinInt64), int32(math.MinInt32), uint8(0xff))
	f.Fuzz(func(t *testing.T, n, status int, outcome, code, message string, uncertain bool,
		start, finish, nsec int64, offset int32, kinds uint8) {
		checkEntry(t, Attempt{N: n, Outcome: outcome, Code: code, Message: message, HTTPStatus: status,
			Uncertain: uncertain, StartedAt: fuzzTime(kinds, start, nsec, offset),
			FinishedAt: fuzzTime(kinds>>2, finish, nsec/3, -offset)})
	})
}

// oldFinishArgs is finishArgs as it was, with json.Marshal.
func oldFinishArgs(s *Store, id string, o Outcome, now time.Time) (rdb.FinishArgs, error) {
	entry, err := json.Marshal(o.Attempt)
	if err != nil {
		return rdb.FinishArgs{}, fmt.Errorf("finish job %s: %w", id, err)
	}
	return s.finishArgsWith(id, o, now, entry), nil
}

// BenchmarkFinishArgs compares finishArgs with the old code for the outcomes
// the worker records most: a success, and a retryable failure with a
// message to escape. Its times are the worker's, from time.Now.
func BenchmarkFinishArgs(b *testing.B) {
	s := &Store{}
	now := time.Now()
	for _, c := range []struct {
		name string
		o    Outcome
	}{
		{"success", Outcome{Kind: FinishSucceeded, AgentLaunchID: "L1", Response: []byte(`{"code":"RCS902"}`),
			Attempt: Attempt{N: 1, Outcome: AttemptSucceeded, Code: "RCS902", Message: "Launch request submitted",
				HTTPStatus: 200, StartedAt: now.Add(-123456789), FinishedAt: now}}},
		{"retryable", Outcome{Kind: FinishRetrying, NextRunAt: now.Add(time.Second),
			Attempt: Attempt{N: 2, Outcome: AttemptRetryable, Code: "RCS500",
				Message: `server error: "upstream <gateway> timed out" & retried`, HTTPStatus: 502,
				StartedAt: now.Add(-30 * time.Second), FinishedAt: now}}},
	} {
		for _, f := range []struct {
			name string
			args func(s *Store, id string, o Outcome, now time.Time) (rdb.FinishArgs, error)
		}{{"old", oldFinishArgs}, {"new", (*Store).finishArgs}} {
			b.Run(c.name+"/"+f.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := f.args(s, "job-1", c.o, now); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
