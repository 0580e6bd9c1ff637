// Package defaults holds the one definition of the launch settings'
// defaults: the environment's (internal/config) and worker.Options' alike.
// It sits below both, importing nothing, because config must not import
// worker; package worker re-exports these as its Default* constants, which
// is where users read them.
package defaults

import "time"

// The defaults, each named after its Options field; the README lists them by
// environment variable.
const (
	Pod              = "in"             // KALEYRA_POD
	Timeout          = 30 * time.Second // KALEYRA_TIMEOUT
	RateLimit        = 10.0             // KALEYRA_RATE_LIMIT, calls per second per SID
	RateBurst        = 1                // KALEYRA_RATE_BURST
	MaxInFlight      = 5                // KALEYRA_MAX_IN_FLIGHT
	CoolOffThreshold = 5                // COOLOFF_THRESHOLD
	CoolOffWindow    = 10 * time.Second // COOLOFF_WINDOW
	CoolOffDuration  = 30 * time.Second // COOLOFF_DURATION
	Concurrency      = 10               // WORKER_CONCURRENCY
	RetryMax         = 8                // RETRY_MAX
	RetryBaseDelay   = time.Second      // RETRY_BASE_DELAY
	RetryMaxDelay    = 5 * time.Minute  // RETRY_MAX_DELAY
	RetryCode        = "RCS502"         // RETRY_CODES: the one code retried
	JobRetention     = 2160 * time.Hour // JOB_RETENTION, 90 days

	FollowInterval    = time.Minute     // FOLLOW_INTERVAL: the first poll's wait, doubling
	FollowMaxInterval = 6 * time.Hour   // FOLLOW_MAX_INTERVAL
	FollowMaxAge      = 336 * time.Hour // FOLLOW_MAX_AGE, 14 days
)

// LaunchStatusPath is LAUNCH_STATUS_PATH: the path of Kaleyra's launch
// status endpoint below the base URL, with {sid} standing for the account
// SID. Kaleyra's pages disagree on it, hence a setting.
const LaunchStatusPath = "/v1/{sid}/rcs/agent/agentlaunchstatus"
