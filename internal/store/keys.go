package store

// Every Redis key of rcslaunch starts with "rcslaunch:", and this file is the
// one place that names them.
//
// The results stream keeps the contract's plain name, rcslaunch:results. All
// other keys that an outcome touches (job record, attempt log, dead-letter
// indexes, batches) carry the hash tag {rcslaunch:results}, which puts them
// in the stream's Redis Cluster slot: one Lua script can then record an
// outcome, append it to the stream and index the dead letter atomically, on a
// single node and on a cluster alike. asynq keeps each queue in one slot for
// the same reason.
const (
	// ResultsStream is the stream with one entry per finished job.
	ResultsStream = "rcslaunch:results"

	slot = "rcslaunch:{rcslaunch:results}:"

	// deadLetters orders every dead-lettered job ID by the time (Unix ms) it
	// was dead-lettered; it is the index of the dead-letter store.
	deadLetters = slot + "dlq"

	// outcomes counts finished jobs by "<outcome>|<code>", for metrics; it
	// is written with each outcome, so it equals the results exactly.
	outcomes = slot + "outcomes"
)

// jobKey is the hash holding one job's record.
func jobKey(id string) string { return slot + "job:" + id }

// attemptsKey is the list of one job's attempt outcomes, oldest first. It
// lives beside the job keys, not under them: IDs may contain ':', and
// "job:<id>:attempts" would be the record key of the job "<id>:attempts".
func attemptsKey(id string) string { return slot + "attempts:" + id }
