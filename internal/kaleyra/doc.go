// Package kaleyra is the client for Kaleyra's RCS "launch an agent" API.
//
// Every call ends in an Outcome rather than an error, so that the worker
// decides between success, retry, dead letter and pushback from one value.
// Answers are classified by Kaleyra's JSON "code", never by HTTP status alone,
// because RCS502 (retryable) and RCS500 (terminal) share HTTP 500.
//
// The API key is a secret.String: it formats as "[redacted]", is sent only in the
// api-key header, is never forwarded on a redirect, and is scrubbed from
// anything the server echoes back.
package kaleyra
