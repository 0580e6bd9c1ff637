// Package rdb owns rcslaunch's Redis plumbing: the client and its version
// check, the name of every key rcslaunch writes, and every Lua script with one
// typed wrapper each. The store and the limiter give the data its meaning;
// this package only says where it lives and how it is sent.
//
// # Keys
//
// Every Redis key of rcslaunch starts with Prefix, "rcslaunch:", so that it
// never collides with asynq's ("asynq:…") or anything else sharing the
// database, and this file is the one place that names them.
//
// Keys that a script touches together must hash to one Redis Cluster slot,
// which a hash tag ("{…}": only the text inside is hashed) arranges:
//
//   - The results stream keeps the contract's plain name, rcslaunch:results.
//     All other keys that an outcome touches (job record, attempt log,
//     dead-letter index, outcome counters, batches) carry the hash tag
//     {rcslaunch:results}, which puts them in the stream's slot: one Lua
//     script can then record an outcome, append it to the stream and index
//     the dead letter atomically, on a single node and on a cluster alike.
//     asynq keeps each queue in one slot for the same reason.
//   - The limiter's keys of one Kaleyra account carry the hash tag
//     {sid:<SID>}: one script takes a rate token and an in-flight slot
//     together, and different accounts spread over the cluster.
//
// The key strings are stored data: changing one orphans what Redis holds.
package rdb

// Prefix starts every key of rcslaunch.
const Prefix = "rcslaunch:"

// ResultsStream is the stream with one entry per finished job.
const ResultsStream = Prefix + "results"

// ResultsSlot starts every key that shares the results stream's cluster slot
// (its hash tag is the stream's name).
const ResultsSlot = Prefix + "{" + ResultsStream + "}:"

const (
	// DeadLetters orders every dead-lettered job ID by the time (Unix ms) it
	// was dead-lettered; it is the index of the dead-letter store.
	DeadLetters = ResultsSlot + "dlq"

	// Outcomes counts finished jobs by "<outcome>|<code>", for metrics; it
	// is written with each outcome, so it equals the results exactly.
	Outcomes = ResultsSlot + "outcomes"

	// BatchIndex orders every batch ID by its creation time (Unix ms).
	BatchIndex = ResultsSlot + "batches"

	// JobPrefix + <job ID> is a job's record (hash); see JobKey.
	JobPrefix = ResultsSlot + "job:"

	// batchPrefix + <batch ID> is a batch's record (hash): name, created_at,
	// started_at, finished_at (Unix ms), closed, and the counters total,
	// queued, running, retrying, succeeded, dead_lettered, code:<CODE> (dead
	// letters by code), deleted and relaunched. The job scripts derive it
	// from a job record's batch field (see lua/lib/batch.lua), which is why
	// it shares the slot's hash tag like every key here.
	batchPrefix = ResultsSlot + "batch:"

	// agentPrefix + <agent number> indexes the agent's jobs (sorted set of
	// job IDs by creation time, ms); see AgentKey and lua/lib/agent.lua.
	agentPrefix = ResultsSlot + "agent:"

	// batchJobsPrefix + <batch ID> lists the batch's job IDs in the order
	// they joined it. Like AttemptsKey, it is not "batch:<id>:jobs", which
	// would be the record key of the batch "<id>:jobs".
	batchJobsPrefix = ResultsSlot + "batchjobs:"
)

// FleetSIDs orders the claims of live workers to serve an account ("<SID>
// <worker>") by when they end (Unix ms); workers renew theirs, producers read
// it to pick a job's queue.
// It holds SIDs only, never a key. No script touches it; it shares the
// results slot only so that every key of ours is in a slot named here.
const FleetSIDs = ResultsSlot + "fleet:sids"

// ReadyKey is written, with a short TTL, by the readiness check (/readyz)
// to see that Redis takes writes.
const ReadyKey = Prefix + "ready"

// JobKey is the hash holding one job's record.
func JobKey(id string) string { return JobPrefix + id }

// AttemptsKey is the list of one job's attempt outcomes, oldest first. It
// lives beside the job keys, not under them: IDs may contain ':', and
// "job:<id>:attempts" would be the record key of the job "<id>:attempts".
func AttemptsKey(id string) string { return ResultsSlot + "attempts:" + id }

// AgentKey is the index of an agent number's jobs.
func AgentKey(agentNo string) string { return agentPrefix + agentNo }

// BatchKey is the hash holding one batch's record and counters.
func BatchKey(id string) string { return batchPrefix + id }

// BatchJobsKey is the list of one batch's job IDs.
func BatchJobsKey(id string) string { return batchJobsPrefix + id }

// SIDKeys are the limiter's keys of one Kaleyra account (SID), all tagged
// {sid:<SID>}. They are built once per SID and kept in the order the limiter
// scripts take them as KEYS, so that a call passes them without building a
// slice.
type SIDKeys struct{ keys []string }

// LimiterKeys returns the limiter's keys of sid.
func LimiterKeys(sid string) SIDKeys {
	p := Prefix + "{sid:" + sid + "}:"
	return SIDKeys{keys: []string{p + "tat", p + "inflight", p + "cooloff", p + "rate", p + "gateway_errors"}}
}

// TAT is the rate limiter's theoretical arrival time (GCRA, Unix µs).
func (k SIDKeys) TAT() string { return k.keys[0] }

// InFlight is the sorted set of in-flight leases: token scored by expiry (Unix µs).
func (k SIDKeys) InFlight() string { return k.keys[1] }

// CoolOff exists, with a TTL, while the account is in cool-off.
func (k SIDKeys) CoolOff() string { return k.keys[2] }

// Rate is the hash of the effective rate lowered by throttling: rate and
// changed (Unix ms).
func (k SIDKeys) Rate() string { return k.keys[3] }

// GatewayErrors counts recent gateway errors towards the cool-off.
func (k SIDKeys) GatewayErrors() string { return k.keys[4] }

// All returns a copy of the keys, in the scripts' KEYS order.
func (k SIDKeys) All() []string { return append([]string(nil), k.keys...) }
