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

	// batchIndex orders every batch ID by its creation time (Unix ms).
	batchIndex = slot + "batches"

	// batchPrefix + <batch ID> is a batch's record (hash): name, created_at,
	// started_at, finished_at (Unix ms), closed, and the counters total,
	// queued, running, retrying, succeeded, dead_lettered, code:<CODE> (dead
	// letters by code), deleted and relaunched. The job scripts derive it
	// from a job record's batch field (see batch.go), which is why it shares
	// the slot's hash tag like every key here.
	batchPrefix = slot + "batch:"

	// batchJobsPrefix + <batch ID> lists the batch's job IDs in the order
	// they joined it. Like attemptsKey, it is not "batch:<id>:jobs", which
	// would be the record key of the batch "<id>:jobs".
	batchJobsPrefix = slot + "batchjobs:"
)

// jobKey is the hash holding one job's record.
func jobKey(id string) string { return slot + "job:" + id }

// attemptsKey is the list of one job's attempt outcomes, oldest first. It
// lives beside the job keys, not under them: IDs may contain ':', and
// "job:<id>:attempts" would be the record key of the job "<id>:attempts".
func attemptsKey(id string) string { return slot + "attempts:" + id }

// batchKey is the hash holding one batch's record and counters.
func batchKey(id string) string { return batchPrefix + id }

// batchJobsKey is the list of one batch's job IDs.
func batchJobsKey(id string) string { return batchJobsPrefix + id }
