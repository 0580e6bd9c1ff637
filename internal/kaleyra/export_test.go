package kaleyra

import (
	"net/http"

	"github.com/rcslaunch/rcslaunch/internal/secret"
)

// OldParseResponse is ParseResponse as it was (see old_test.go).
var OldParseResponse = oldParseResponse

// Readers of parts of an answer, as they are and as they were.
var (
	LaunchID       = launchID
	OldLaunchID    = oldLaunchID
	ErrorDetail    = errorDetail
	OldErrorDetail = oldErrorDetail
)

// KeyClient returns a Client for key, which New may refuse (empty, or with
// control characters), for tests of what a Client makes of answers.
func KeyClient(key string) *Client {
	k := secret.String(key)
	return &Client{key: &k, match: k.Matcher(), retry: map[string]bool{"RCS502": true}}
}

// Scrub returns what scrub makes of body, whether it found body clean, and
// what scrubBody, which scrub skips for a clean body, makes of it.
func (c *Client) Scrub(body []byte) (got []byte, clean bool, slow []byte) {
	_, got, clean = c.scrub(http.Header{}, body)
	return got, clean, c.scrubBody(body)
}

// Answer is what Launch makes of an answer read whole.
func (c *Client) Answer(status int, header http.Header, body []byte) Outcome {
	out := c.answer(status, header, body)
	c.redact(&out)
	return out
}

// OldAnswer is Answer as it was.
func (c *Client) OldAnswer(status int, header http.Header, body []byte) Outcome {
	header, body = c.oldScrub(header, body)
	out := oldParseResponse(status, header, body, c.retry)
	c.oldRedact(&out)
	return out
}

// StatusAnswer is what LaunchStatus makes of an answer read whole.
func (c *Client) StatusAnswer(status int, header http.Header, body []byte) StatusOutcome {
	out := c.statusAnswer(status, header, body)
	c.redactAll(&out.Code, &out.Message, &out.Reported)
	return out
}

// OldStatusAnswer is StatusAnswer with scrub and the redaction as they
// were: ParseLaunchStatus itself differs only in errorDetail, which
// FuzzReadersMatchOld compares with the old one.
func (c *Client) OldStatusAnswer(status int, header http.Header, body []byte) StatusOutcome {
	header, body = c.oldScrub(header, body)
	out := ParseLaunchStatus(status, header, body)
	c.oldRedactAll(&out.Raw, &out.Code, &out.Message, &out.Reported)
	return out
}
