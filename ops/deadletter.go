package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"golang.org/x/time/rate"

	"github.com/rcslaunch/rcslaunch/internal/jobfile"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/launch"
)

// NormalizeCode is a code filter as the store keeps codes: upper case
// (RCS904, TIMEOUT), without surrounding blanks, so that "rcs904" finds
// RCS904 whichever front end it was typed into. Every operation here that
// takes a Filter or a Selection applies it.
func NormalizeCode(code string) string { return strings.ToUpper(strings.TrimSpace(code)) }

// normalized is f with its code normalised.
func normalized(f Filter) Filter {
	f.Code = NormalizeCode(f.Code)
	return f
}

// Selection names the dead letters a bulk operation acts on: exactly one of
// IDs, All, or a filter of Code, Batch and SID (any of them; together, the
// letters that match all).
type Selection struct {
	IDs  []string // these jobs, as named (each may turn out not found)
	All  bool     // every dead letter
	Code string   // every dead letter whose last code is Code
	// Batch: every dead letter of this batch (with Code, of that code).
	Batch string
	// SID: every dead letter of this account (with Code or Batch, of
	// those).
	SID string
}

// filter is the store filter of a selection by Code, Batch and SID.
func (s Selection) filter() store.Filter {
	return store.Filter{Code: NormalizeCode(s.Code), Batch: s.Batch, SID: s.SID}
}

// ErrBadSelection: a Selection names none, or more than one, of its ways.
var ErrBadSelection = errors.New("name dead letters by ID, all, or code, batch and SID (exactly one of these ways)")

// Describe says which dead letters a selection by filter names, for people:
// " with code RCS904 of batch b_1 of account AC1" (each part when given);
// "" for a selection by IDs or all.
func (s Selection) Describe() string {
	f, out := s.filter(), ""
	for _, part := range [][2]string{{" with code ", f.Code}, {" of batch ", f.Batch}, {" of account ", f.SID}} {
		if part[1] != "" {
			out += part[0] + part[1]
		}
	}
	return out
}

// Check reports ErrBadSelection unless exactly one way is given (a code of
// blanks is none).
func (s Selection) Check() error {
	n := 0
	for _, given := range []bool{len(s.IDs) > 0, s.All, s.filter() != store.Filter{}} {
		if given {
			n++
		}
	}
	if n != 1 {
		return ErrBadSelection
	}
	return nil
}

// Action is what a retry or delete did with one selected job.
type Action string

// Actions.
const (
	Retried          Action = "retried"           // back on the queue with a fresh attempt budget
	SkippedUncertain Action = "uncertain"         // left alone: the agent may have been launched
	Deleted          Action = "deleted"           // dropped with its record
	NotFound         Action = "not_found"         // no such job (already retried or deleted?)
	NotDeadLettered  Action = "not_dead_lettered" // the job is in another state (see State); untouched
)

// DeadLetterResult is what a retry or delete did with one job.
type DeadLetterResult struct {
	JobID  string
	Action Action
	// State is the job's state when Action is NotDeadLettered.
	State State
	// Letter is the dead letter in a dry run (nil otherwise, and when the
	// job is not one).
	Letter *Record
}

// OK reports whether the job ended where the operator asked: retried,
// deleted, or deliberately left alone as uncertain.
func (r DeadLetterResult) OK() bool {
	return r.Action == Retried || r.Action == Deleted || r.Action == SkippedUncertain
}

// Key names the result in a Tally: the action, or for a job that is not a
// dead letter, its state ("queued", "succeeded", …).
func (r DeadLetterResult) Key() string {
	if r.Action == NotDeadLettered {
		return string(r.State)
	}
	return string(r.Action)
}

// Describe says the result in words, for people.
func (r DeadLetterResult) Describe() string {
	switch r.Action {
	case SkippedUncertain:
		return "skipped as uncertain"
	case NotFound:
		return "not found"
	case NotDeadLettered:
		return "not dead-lettered (" + string(r.State) + ")"
	}
	return string(r.Action)
}

// Tally counts the results of a bulk operation by Key, in the order each
// was first seen.
type Tally struct {
	counts map[string]int
	labels map[string]string
	order  []string
}

// Add counts one result.
func (t *Tally) Add(r DeadLetterResult) {
	if t.counts == nil {
		t.counts, t.labels = map[string]int{}, map[string]string{}
	}
	k := r.Key()
	if t.counts[k] == 0 {
		t.order = append(t.order, k)
		t.labels[k] = r.Describe()
	}
	t.counts[k]++
}

// Count is how many results had key k (an Action or a State).
func (t *Tally) Count(k string) int { return t.counts[k] }

// Counts is the tally as a map from key to count, for JSON.
func (t *Tally) Counts() map[string]int {
	out := make(map[string]int, len(t.counts))
	for k, n := range t.counts {
		out[k] = n
	}
	return out
}

// String is "retried 3, skipped as uncertain 1", or "nothing selected".
func (t *Tally) String() string {
	if len(t.order) == 0 {
		return "nothing selected"
	}
	parts := make([]string, len(t.order))
	for i, k := range t.order {
		parts[i] = fmt.Sprintf("%s %d", t.labels[k], t.counts[k])
	}
	return strings.Join(parts, ", ")
}

// BulkOpts changes a bulk retry or delete; nil means the defaults.
type BulkOpts struct {
	// IncludeUncertain retries dead letters marked uncertain too (the agent
	// may have been launched). Delete ignores it.
	IncludeUncertain bool
	// OnEach, when set, is called after each job, for progress and for
	// reporting named jobs that were not acted on.
	OnEach func(DeadLetterResult)
	// Rate paces the operation to at most Rate jobs a second, so that a
	// redrive of thousands does not flood the queue; 0 is unpaced.
	Rate float64
	// DryRun changes nothing: each selected job is reported as the
	// operation would leave it, with its Letter. Rate does not apply.
	DryRun bool
}

// ErrBadRate: BulkOpts.Rate is negative or not a number.
var ErrBadRate = errors.New("rate must be a positive number of jobs a second (0: unpaced)")

// pacer waits before each job as opts asks; it is nil (no wait) when unpaced.
func pacer(opts *BulkOpts) (*rate.Limiter, error) {
	if opts == nil {
		return nil, nil
	}
	if opts.Rate < 0 || math.IsNaN(opts.Rate) {
		return nil, fmt.Errorf("%w, got %v", ErrBadRate, opts.Rate)
	}
	if opts.Rate == 0 || opts.DryRun {
		return nil, nil
	}
	// A burst of one: the first job goes at once, then one every 1/Rate s.
	return rate.NewLimiter(rate.Limit(opts.Rate), 1), nil
}

// RetryDeadLetter puts one dead letter back on the launch queue with a fresh
// attempt budget; it leaves the dead-letter store only once its task is
// safely enqueued. An unknown ID is reported as NotFound, not as an error.
func (c *Client) RetryDeadLetter(ctx context.Context, id string, includeUncertain bool) (DeadLetterResult, error) {
	res, state, err := c.producer.RetryDeadLetter(ctx, id, includeUncertain)
	r := DeadLetterResult{JobID: id}
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.Action = NotFound
	case err != nil:
		return r, err
	case res == store.Requeued:
		r.Action = Retried
	case res == store.Uncertain:
		r.Action = SkippedUncertain
	default:
		r.Action, r.State = NotDeadLettered, state
	}
	return r, nil
}

// DeleteDeadLetter drops one dead letter and its record; the job can then be
// enqueued anew. An unknown ID is reported as NotFound, not as an error.
func (c *Client) DeleteDeadLetter(ctx context.Context, id string) (DeadLetterResult, error) {
	deleted, state, err := c.store.DeleteDeadLetter(ctx, id)
	r := DeadLetterResult{JobID: id}
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.Action = NotFound
	case err != nil:
		return r, err
	case deleted:
		r.Action = Deleted
	default:
		r.Action, r.State = NotDeadLettered, state
	}
	return r, nil
}

// RetryDeadLetters retries every selected dead letter, as RetryDeadLetter
// does one. It stops at the first error, returning the tally so far.
func (c *Client) RetryDeadLetters(ctx context.Context, sel Selection, opts *BulkOpts) (Tally, error) {
	include := opts != nil && opts.IncludeUncertain
	return c.eachSelected(ctx, sel, opts, func(id string) (DeadLetterResult, error) {
		return c.RetryDeadLetter(ctx, id, include)
	}, func(r Record) Action {
		if r.Uncertain && !include {
			return SkippedUncertain
		}
		return Retried
	})
}

// DeleteDeadLetters deletes every selected dead letter, as DeleteDeadLetter
// does one. It stops at the first error, returning the tally so far.
func (c *Client) DeleteDeadLetters(ctx context.Context, sel Selection, opts *BulkOpts) (Tally, error) {
	return c.eachSelected(ctx, sel, opts, func(id string) (DeadLetterResult, error) {
		return c.DeleteDeadLetter(ctx, id)
	}, func(Record) Action { return Deleted })
}

// eachSelected applies op to every selected job, paced as opts asks, and
// tallies the results; in a dry run it reports what it would do with each
// letter instead. Named IDs are taken as given; the others are walked in
// the store, which lets op remove the letter it is given.
func (c *Client) eachSelected(ctx context.Context, sel Selection, opts *BulkOpts,
	op func(id string) (DeadLetterResult, error), would func(Record) Action) (Tally, error) {
	var t Tally
	if err := sel.Check(); err != nil {
		return t, err
	}
	pace, err := pacer(opts)
	if err != nil {
		return t, err
	}
	act := func(id string, _ *Record) (DeadLetterResult, error) { return op(id) }
	if opts != nil && opts.DryRun {
		act = func(id string, letter *Record) (DeadLetterResult, error) { return c.preview(ctx, id, letter, would) }
	}
	one := func(id string, letter *Record) error {
		if pace != nil {
			if err := pace.Wait(ctx); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := act(id, letter)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		t.Add(r)
		if opts != nil && opts.OnEach != nil {
			opts.OnEach(r)
		}
		return nil
	}
	if len(sel.IDs) > 0 {
		for _, id := range sel.IDs {
			if err := one(id, nil); err != nil {
				return t, fmt.Errorf("stopped after %s: %w", t.String(), err)
			}
		}
		return t, nil
	}
	err = c.store.EachDeadLetter(ctx, sel.filter(), func(r store.Record) error { return one(r.ID, &r) })
	if err != nil {
		return t, fmt.Errorf("stopped after %s: %w", t.String(), err)
	}
	return t, nil
}

// preview is what a bulk operation would do with one job, changing
// nothing: would decides for a dead letter. letter is the dead letter when
// the caller has read it already.
func (c *Client) preview(ctx context.Context, id string, letter *Record, would func(Record) Action) (DeadLetterResult, error) {
	r := DeadLetterResult{JobID: id}
	if letter == nil {
		rec, err := c.store.Get(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			r.Action = NotFound
			return r, nil
		case err != nil:
			return r, err
		case rec.State != StateDeadLettered:
			r.Action, r.State = NotDeadLettered, rec.State
			return r, nil
		}
		letter = &rec
	}
	r.Action, r.Letter = would(*letter), letter
	return r, nil
}

// CountSelected is how many dead letters sel names (for a progress bar); for
// named IDs, how many are named.
func (c *Client) CountSelected(ctx context.Context, sel Selection) (int64, error) {
	if len(sel.IDs) > 0 {
		return int64(len(sel.IDs)), nil
	}
	return c.store.CountDeadLetters(ctx, sel.filter())
}

// EachDeadLetter calls fn for every dead letter matching f, newest first,
// reading a page at a time so that memory does not grow with the store.
func (c *Client) EachDeadLetter(ctx context.Context, f Filter, fn func(Record) error) error {
	return c.store.EachDeadLetter(ctx, normalized(f), fn)
}

// ListDeadLetters returns up to limit dead letters matching f from offset,
// newest first, and how many match in all.
func (c *Client) ListDeadLetters(ctx context.Context, f Filter, offset, limit int) ([]Record, int64, error) {
	f = normalized(f)
	recs, err := c.store.ListDeadLetters(ctx, f, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	total, err := c.store.CountDeadLetters(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	return recs, total, nil
}

// CountDeadLetters is how many dead letters match f.
func (c *Client) CountDeadLetters(ctx context.Context, f Filter) (int64, error) {
	return c.store.CountDeadLetters(ctx, normalized(f))
}

// ExportDeadLetters writes every dead letter matching f to w as a JSONL job
// (with its ID, SID and priority) that a file enqueue accepts again, each
// for its own account at its own priority.
func (c *Client) ExportDeadLetters(ctx context.Context, f Filter, w io.Writer) error {
	return c.store.EachDeadLetter(ctx, normalized(f), func(r store.Record) error { return writeJob(w, r.ID, r.SID, r.Queue, r.Payload) })
}

// writeJob writes a stored payload (the request body, without ID and SID)
// as a job line with its ID, SID and, when not default, the priority of the
// queue qname its task was on, so that the job goes back where it was.
func writeJob(w io.Writer, id, sid, qname string, payload []byte) error {
	var j launch.Job
	if err := json.Unmarshal(payload, &j); err != nil {
		return fmt.Errorf("job %s: stored payload: %w", id, err)
	}
	j.ID, j.SID = id, sid
	if p := queue.PriorityOf(sid, qname); p != PriorityDefault {
		j.Priority = p
	}
	return jobfile.Write(w, j)
}
