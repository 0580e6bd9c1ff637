// Package kaleyra is the client for Kaleyra's RCS "launch an agent" API, and
// for its launch status endpoint.
//
// Every call ends in an Outcome rather than an error, so that the worker
// decides between success, retry, dead letter and pushback from one value.
// Answers are classified by Kaleyra's JSON "code", never by HTTP status alone,
// because RCS502 (retryable) and RCS500 (terminal) share HTTP 500.
//
// The API key is a secret.String: it formats as "[redacted]", is sent only in the
// api-key header, is never forwarded on a redirect, and is scrubbed from
// anything the server echoes back, in whatever case or escaping (see
// secret.String.In): a JSON answer is redacted in its decoded strings and
// kept as JSON.
//
// Client.LaunchStatus polls a launch's state (pending, launched, rejected,
// suspended, unknown) and ends in a StatusOutcome, where a bad answer is a
// failed poll to retry at the next interval, never a state. It is not used
// by the worker yet: following launches (FOLLOW_LAUNCH, LAUNCH_STATUS_PATH
// feeding Options.StatusPath) is a later step, so nothing polls today.
package kaleyra
