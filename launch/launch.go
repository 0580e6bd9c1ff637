// Package launch defines a launch job, the unit of work of rcslaunch: one
// Kaleyra "launch an agent" request plus an optional idempotency key.
//
// It is shared by every producer (the enqueue package, the CLI, the HTTP API),
// the worker and the simulator, so that all of them agree on what a valid job
// is, how it is written on the wire, and which job ID it gets.
package launch

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
)

// DefaultLaunchType is the launch_type Kaleyra assumes, applied when a job
// leaves it out so that the canonical form (and so the derived ID) is the
// same whether or not the default was spelled out.
const DefaultLaunchType = "1"

// Job is one agent launch. Launch and Regions are sent to Kaleyra as they
// are; ID is ours alone and never leaves rcslaunch.
type Job struct {
	// ID is an optional idempotency key. Empty means "derive one from the
	// SID and the payload" (see DeriveID).
	ID string `json:"id,omitempty"`
	// SID is the Kaleyra account the job is for. Empty means the producer's
	// (KALEYRA_SID at enqueue); see AccountSID. Like ID, it never reaches
	// Kaleyra in the body: it picks the account's path and key.
	SID string `json:"sid,omitempty"`
	// Priority is the job's priority within its account; empty means the
	// producer's (enqueue --priority). Like SID, it is not part of the body
	// Kaleyra receives nor of the derived ID: the same launch at another
	// priority is the same job.
	Priority Priority `json:"priority,omitempty"`
	Launch   Launch   `json:"launch"`
	Regions  []Region `json:"regions,omitempty"`
}

// Priority orders the jobs of one account: a worker takes an account's
// high-priority jobs before its default ones, and those before its low ones,
// by weight (6:3:1), so that a lower priority slows down but never stops.
// Priorities never cross accounts: every account gets its share whatever
// the priority of another's jobs.
type Priority string

// The priorities a job may have.
const (
	PriorityHigh    Priority = "high"
	PriorityDefault Priority = "default"
	PriorityLow     Priority = "low"
)

// Priorities lists the priorities, highest first.
var Priorities = []Priority{PriorityHigh, PriorityDefault, PriorityLow}

// ParsePriority reads a priority by name, ignoring case and surrounding
// spaces (the value of a flag or query parameter); "" is PriorityDefault.
func ParsePriority(s string) (Priority, error) {
	switch p := Priority(strings.ToLower(strings.TrimSpace(s))); p {
	case "":
		return PriorityDefault, nil
	case PriorityHigh, PriorityDefault, PriorityLow:
		return p, nil
	}
	return "", fmt.Errorf("priority %s: want high, default or low", strconv.Quote(s))
}

// Launch is Kaleyra's launch object. Fields are kept in alphabetical order
// of their JSON names so that encoding/json writes them sorted, which is
// what the canonical form needs.
type Launch struct {
	AgentAccessInstructions string   `json:"agent_access_instructions"`
	AgentNo                 string   `json:"agent_no"`
	InteractionsDescription string   `json:"interactions_description"`
	LaunchName              string   `json:"launch_name,omitempty"`
	LaunchType              string   `json:"launch_type"`
	OptinDescription        string   `json:"optin_description"`
	OptoutDescription       string   `json:"optout_description"`
	ProviderLaunchID        string   `json:"provider_launch_id,omitempty"`
	ScreenshotURIs          []string `json:"screenshot_uris,omitempty"`
	TriggerDescription      string   `json:"trigger_description"`
	VideoURIs               []string `json:"video_uris,omitempty"`
}

// Region is one carrier region the agent is launched in.
type Region struct {
	Region   string `json:"region"`
	RegionID string `json:"region_id,omitempty"`
}

// AccountSID returns the job's own SID, or def when it has none: the
// account the job is launched with.
func (j Job) AccountSID(def string) string {
	if j.SID != "" {
		return j.SID
	}
	return def
}

// ApplyDefaults fills in what Kaleyra would assume for a missing field.
func (j *Job) ApplyDefaults() {
	if j.Launch.LaunchType == "" {
		j.Launch.LaunchType = DefaultLaunchType
	}
}

// Body returns the canonical request body: the job after defaults, without
// its ID, SID and priority, as JSON with sorted keys, no insignificant white
// space and no HTML escaping. It is both what Kaleyra receives and what
// DeriveID hashes.
//
// The worker calls it for every job it runs, so it writes a body by hand,
// without the reflection of encoding/json that was most of its cost, but as
// encoding/json would: the keys of the struct tags in their order, the same
// fields left out (omitempty: an empty string, an empty or nil list) and
// every string quoted by jsontext.AppendString as an Encoder with
// SetEscapeHTML(false) quotes it. Not a byte may change, as the bytes
// define the derived job IDs.
func (j Job) Body() []byte {
	j.ApplyDefaults()
	l := &j.Launch
	// Room for the whole body but its escapes (the text, the quotes and
	// commas of list items, and at most 267 bytes of other keys and
	// punctuation) and for some escapes besides: one allocation for nearly
	// every job.
	n := 512 + len(l.AgentAccessInstructions) + len(l.AgentNo) + len(l.InteractionsDescription) +
		len(l.LaunchName) + len(l.LaunchType) + len(l.OptinDescription) + len(l.OptoutDescription) +
		len(l.ProviderLaunchID) + len(l.TriggerDescription)
	for _, list := range [][]string{l.ScreenshotURIs, l.VideoURIs} {
		for _, u := range list {
			n += len(`"",`) + len(u)
		}
	}
	for _, r := range j.Regions {
		n += len(`{"region":"","region_id":""},`) + len(r.Region) + len(r.RegionID)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"launch":{"agent_access_instructions":`...)
	b = jsontext.AppendString(b, l.AgentAccessInstructions)
	b = append(b, `,"agent_no":`...)
	b = jsontext.AppendString(b, l.AgentNo)
	b = append(b, `,"interactions_description":`...)
	b = jsontext.AppendString(b, l.InteractionsDescription)
	if l.LaunchName != "" {
		b = append(b, `,"launch_name":`...)
		b = jsontext.AppendString(b, l.LaunchName)
	}
	b = append(b, `,"launch_type":`...)
	b = jsontext.AppendString(b, l.LaunchType)
	b = append(b, `,"optin_description":`...)
	b = jsontext.AppendString(b, l.OptinDescription)
	b = append(b, `,"optout_description":`...)
	b = jsontext.AppendString(b, l.OptoutDescription)
	if l.ProviderLaunchID != "" {
		b = append(b, `,"provider_launch_id":`...)
		b = jsontext.AppendString(b, l.ProviderLaunchID)
	}
	if len(l.ScreenshotURIs) > 0 {
		b = append(b, `,"screenshot_uris":`...)
		b = appendStrings(b, l.ScreenshotURIs)
	}
	b = append(b, `,"trigger_description":`...)
	b = jsontext.AppendString(b, l.TriggerDescription)
	if len(l.VideoURIs) > 0 {
		b = append(b, `,"video_uris":`...)
		b = appendStrings(b, l.VideoURIs)
	}
	b = append(b, '}')
	if len(j.Regions) > 0 {
		b = append(b, `,"regions":[`...)
		for i, r := range j.Regions {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"region":`...)
			b = jsontext.AppendString(b, r.Region)
			if r.RegionID != "" {
				b = append(b, `,"region_id":`...)
				b = jsontext.AppendString(b, r.RegionID)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendStrings appends list to b as a JSON array of strings.
func appendStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendString(b, s)
	}
	return append(b, ']')
}

// DeriveID returns the job ID used when a job has none of its own: the first
// 128 bits of SHA-256 over the SID, a NUL byte and the canonical body, in
// hex. The same job for the same account always gets the same ID, which is
// what makes re-enqueueing a file a no-op.
func DeriveID(sid string, j Job) string {
	h := sha256.New()
	h.Write([]byte(sid))
	h.Write([]byte{0})
	h.Write(j.Body())
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// IDFor returns the job's own ID, or the one derived from its account (the
// job's SID, else sid) when it has none.
func IDFor(sid string, j Job) string {
	if j.ID != "" {
		return j.ID
	}
	return DeriveID(j.AccountSID(sid), j)
}
