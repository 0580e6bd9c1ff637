package kaleyra

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/baseurl"
	"github.com/rcslaunch/rcslaunch/internal/defaults"
	"github.com/rcslaunch/rcslaunch/internal/secret"
)

const (
	maxIdleConnsPerHost = 64
)

// Options configure a Client.
type Options struct {
	// BaseURL is the API base, as returned by baseurl.Resolve.
	BaseURL string
	// SID is the account SID; it becomes part of the request path.
	SID string
	// APIKey is sent in the api-key header.
	APIKey secret.String
	// Timeout bounds each call, from connecting to reading the whole
	// answer. Zero means defaults.Timeout (30s).
	Timeout time.Duration
	// RetryCodes are the Kaleyra codes classified as Retryable. Empty means
	// just defaults.RetryCode (RCS502).
	RetryCodes []string
	// StatusPath is the path of the launch status endpoint below BaseURL,
	// where {sid} stands for SID. Empty means defaults.LaunchStatusPath
	// ("/v1/{sid}/rcs/agent/agentlaunchstatus"); it is configurable because
	// Kaleyra's pages disagree on it.
	StatusPath string
	// HTTPClient, when set, is used instead of the default client (in
	// tests). Whatever its CheckRedirect, redirects are not followed.
	HTTPClient *http.Client
}

// Client calls Kaleyra's launch and launch status endpoints for one
// account. It is safe for concurrent use.
type Client struct {
	http     *http.Client
	endpoint string
	// statusEndpoint is the launch status URL, without its query.
	statusEndpoint string
	// key is a pointer so that printing a Client with fmt shows an address:
	// fmt cannot call secret.String's methods on an unexported field.
	key *secret.String
	// match finds the key where a server echoed it, made once for every
	// answer's scrub (secret.Matcher).
	match   *secret.Matcher
	timeout time.Duration
	retry   map[string]bool
}

// New returns a Client for o after checking it: BaseURL as baseurl.Check
// does, SID made of letters, digits, '-' and '_', a non-empty API key
// without control characters, retry codes that Kaleyra can send as a
// failure (matched case-insensitively; never RCS902 or a pseudo-code), and
// a status path as baseurl.StatusPath wants it.
func New(o Options) (*Client, error) {
	base, err := baseurl.Check(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("kaleyra: base URL: %w", err)
	}
	if err := baseurl.CheckSID(o.SID); err != nil {
		return nil, fmt.Errorf("kaleyra: SID: %w", err)
	}
	if err := checkKey(o.APIKey); err != nil {
		return nil, fmt.Errorf("kaleyra: API key: %w", err)
	}
	timeout := o.Timeout
	switch {
	case timeout < 0:
		return nil, fmt.Errorf("kaleyra: timeout %v is negative", timeout)
	case timeout == 0:
		timeout = defaults.Timeout
	}
	retry, err := retrySet(o.RetryCodes)
	if err != nil {
		return nil, fmt.Errorf("kaleyra: retry codes: %w", err)
	}
	statusPath, err := baseurl.StatusPath(o.StatusPath)
	if err != nil {
		return nil, fmt.Errorf("kaleyra: status path: %w", err)
	}
	key := o.APIKey
	return &Client{
		http:           httpClient(o.HTTPClient),
		endpoint:       base + "/v1/" + o.SID + "/rcs/agent/launch",
		statusEndpoint: base + strings.ReplaceAll(statusPath, "{sid}", o.SID),
		key:            &key,
		match:          key.Matcher(),
		timeout:        timeout,
		retry:          retry,
	}, nil
}

// checkKey rejects a key that cannot be sent as a header value. Its errors
// never include the key.
func checkKey(key secret.String) error {
	k := key.Reveal()
	if strings.TrimSpace(k) == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < ' ' && k[i] != '\t' || k[i] == 0x7f {
			return errors.New("contains a control character (a stray newline?)")
		}
	}
	return nil
}

// retrySet turns RetryCodes into a set, refusing codes that cannot come from
// Kaleyra as a failure: our pseudo-codes (timeouts, transport errors and bad
// answers are never retried, as the request may have been launched) and the
// success code.
func retrySet(codes []string) (map[string]bool, error) {
	if len(codes) == 0 {
		codes = []string{defaults.RetryCode}
	}
	set := make(map[string]bool, len(codes))
	for _, c := range codes {
		c = strings.ToUpper(strings.TrimSpace(c))
		switch {
		case c == "":
			return nil, errors.New("empty code in the list")
		case c == codeCreated:
			return nil, fmt.Errorf("%s means success and cannot be retried", codeCreated)
		case !plausibleCode(c):
			return nil, fmt.Errorf("%s is not a Kaleyra code (our own codes TIMEOUT, TRANSPORT_ERROR, BAD_RESPONSE and THROTTLED are not retry codes)", quote(c, maxCodeLen))
		}
		set[c] = true
	}
	return set, nil
}

// NewHTTPClient returns an HTTP client for the Clients of many accounts,
// which share its connections, keeping up to conns of them open to a host
// between calls: one for each call that may be in flight at once (a
// worker's concurrency). Every account of a pod calls the same host, and a
// connection closed for want of room is redialled for the next call, and
// with TLS each redial is a handshake, about as costly as the launch itself.
func NewHTTPClient(conns int) *http.Client {
	c := httpClient(nil)
	t := c.Transport.(*http.Transport)
	t.MaxIdleConnsPerHost = max(conns, maxIdleConnsPerHost)
	t.MaxIdleConns = max(t.MaxIdleConns, t.MaxIdleConnsPerHost)
	return c
}

// httpClient returns the client Launch uses: hc or a pooled default, never
// following redirects, which would send the api-key header to another URL.
func httpClient(hc *http.Client) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	} else {
		t, ok := http.DefaultTransport.(*http.Transport)
		if ok {
			t = t.Clone()
		} else {
			t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
		}
		t.MaxIdleConnsPerHost = maxIdleConnsPerHost
		c.Transport = t
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// errCallTimeout is the cause of a context ended by Options.Timeout, to tell
// it from the caller's own deadline.
var errCallTimeout = errors.New("kaleyra: call timeout")

// How far the request got, as seen by httptrace; zero is "not yet written".
const (
	writing     int32 = iota + 1 // headers written, body maybe not yet
	written                      // the whole request written
	writeFailed                  // writing failed part way
)

// Launch posts body, the JSON request Kaleyra's launch endpoint takes, and
// returns what came of it. The body is sent as it is: the caller encodes it
// (a launch job's canonical body, without the job's ID). Launch never fails:
// a timeout, a transport error or an unreadable answer is an Outcome too.
func (c *Client) Launch(ctx context.Context, body []byte) Outcome {
	start := time.Now()
	out := c.launch(ctx, body)
	out.Duration = time.Since(start)
	c.redact(&out)
	return out
}

func (c *Client) launch(ctx context.Context, body []byte) Outcome {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, errCallTimeout)
	defer cancel()
	var state atomic.Int32
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaders: func() { state.Store(writing) },
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err != nil {
				state.Store(writeFailed)
			} else {
				state.Store(written)
			}
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return Outcome{Class: Terminal, Code: CodeTransport, Message: "building the request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "rcslaunch")
	req.Header.Set("api-key", c.key.Reveal())

	resp, err := c.http.Do(req)
	if err != nil {
		// A request still being written when the call failed may yet have
		// reached Kaleyra whole, so it counts as sent.
		s := state.Load()
		sent := s == writing || s == written
		where := "before the request was sent"
		if sent {
			where = "after the request was sent, so the agent may have been launched"
		}
		return c.failed(ctx, err, 0, sent, where)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil && resp.StatusCode != http.StatusTooManyRequests {
		// Only a 2xx answer may mean the launch was created.
		return c.failed(ctx, err, resp.StatusCode, resp.StatusCode/100 == 2,
			fmt.Sprintf("while reading the body of an HTTP %d answer", resp.StatusCode))
	}
	return c.answer(resp.StatusCode, resp.Header, data)
}

// answer is what a launch makes of an answer: scrubbed of the API key, then
// classified.
func (c *Client) answer(status int, header http.Header, body []byte) Outcome {
	header, body, clean := c.scrub(header, body)
	out := ParseResponse(status, header, body, c.retry)
	if !clean {
		out.Raw = c.redactRaw(out.Raw)
	}
	return out
}

// failed builds the outcome of a call that got no usable answer.
func (c *Client) failed(ctx context.Context, err error, status int, uncertain bool, where string) Outcome {
	code, cause := CodeTransport, "transport error"
	switch {
	case errors.Is(context.Cause(ctx), errCallTimeout):
		code, cause = CodeTimeout, fmt.Sprintf("no answer within the %v call timeout", c.timeout)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		code, cause = CodeTimeout, "the caller's deadline passed"
	case errors.Is(ctx.Err(), context.Canceled):
		cause = "cancelled by the caller"
	case isTimeout(err):
		code, cause = CodeTimeout, "timed out"
	}
	return Outcome{
		Class:      Terminal,
		Code:       code,
		Message:    truncate(cause+" "+where+": "+err.Error(), maxMessage),
		HTTPStatus: status,
		Uncertain:  uncertain,
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// scrub replaces the API key wherever a server echoed it into the body or
// the Location header, before any of it is quoted in a message or kept. An
// echo need not be byte for byte (see secret.String.In): a JSON body is
// redacted in its decoded strings and stays valid JSON, so that the answer
// can still be read and kept; any other body is redacted as text. clean
// reports that the body holds no spelling of the key, so that a copy of it
// needs no second look; strings made from its parts still do, as escaping
// or joining them may spell the key.
func (c *Client) scrub(header http.Header, body []byte) (_ http.Header, _ []byte, clean bool) {
	key := c.match
	// Most answers are found clean by scans much cheaper than checking that
	// they are JSON, which redacting one takes.
	if clean = key.Clean(body); !clean {
		body = c.scrubBody(body)
	}
	if loc := header.Get("Location"); key.In(loc) {
		header = header.Clone()
		header.Set("Location", key.Redact(loc))
	}
	return header, body, clean
}

// scrubBody is scrub's redaction of a body that may hold the key.
func (c *Client) scrubBody(body []byte) []byte {
	key := c.match
	if json.Valid(body) {
		return key.RedactJSON(body)
	}
	if key.In(string(body)) {
		return []byte(key.Redact(string(body)))
	}
	return body
}

// redact removes the API key from every string of out, as a last guard for
// the messages of errors this package does not control.
func (c *Client) redact(out *Outcome) {
	c.redactAll(&out.Code, &out.Message, &out.ErrorCode, &out.AgentLaunchID)
}

// redactAll replaces the API key, in any spelling, in each of strs.
func (c *Client) redactAll(strs ...*string) {
	key := c.match
	for _, s := range strs {
		*s = key.Redact(*s)
	}
}

// redactRaw returns raw, an answer kept in an outcome, with the API key
// redacted, or nil if it still holds the key: a last guard after scrub,
// which an answer that scrub found clean does not need, raw being a copy of
// it.
func (c *Client) redactRaw(raw json.RawMessage) json.RawMessage {
	key := c.match
	if key.In(string(raw)) {
		raw = key.RedactJSON(raw)
		if key.In(string(raw)) {
			return nil
		}
	}
	return raw
}
