package kaleyra

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
)

// LaunchState is where a launch request stands, in the terms of Google RBM's
// launch states, which Kaleyra's launch questionnaire mirrors.
type LaunchState string

// The launch states. Kaleyra does not publish the states its status
// endpoint reports; ParseLaunchStatus maps the names it recognises onto
// these and everything else onto StateUnknown.
const (
	StatePending   LaunchState = "pending"   // submitted, under review
	StateLaunched  LaunchState = "launched"  // approved and live
	StateRejected  LaunchState = "rejected"  // refused or failed
	StateSuspended LaunchState = "suspended" // taken down after launch, or being unlaunched
	StateUnknown   LaunchState = "unknown"   // an answer without a state we recognise
)

// Valid reports whether s is one of the five launch states.
func (s LaunchState) Valid() bool {
	switch s {
	case StatePending, StateLaunched, StateRejected, StateSuspended, StateUnknown:
		return true
	}
	return false
}

// stateNames maps state names, normalised by normaliseState, onto states.
// A name missing here reads as StateUnknown: guessing wrong about a launch
// would be worse than saying we do not know.
var stateNames = map[string]LaunchState{
	"PENDING": StatePending, "SUBMITTED": StatePending, "IN_PROGRESS": StatePending,
	"INPROGRESS": StatePending, "UNDER_REVIEW": StatePending, "IN_REVIEW": StatePending,
	"LAUNCH_REQUESTED": StatePending, "REQUESTED": StatePending, "PENDING_LAUNCH": StatePending,
	"PROCESSING": StatePending,
	"LAUNCHED":   StateLaunched, "APPROVED": StateLaunched, "LIVE": StateLaunched,
	"REJECTED": StateRejected, "DENIED": StateRejected, "FAILED": StateRejected,
	"LAUNCH_REJECTED": StateRejected, "LAUNCH_FAILED": StateRejected,
	"SUSPENDED": StateSuspended, "UNLAUNCHED": StateSuspended, "UNLAUNCHING": StateSuspended,
	"PENDING_UNLAUNCH": StateSuspended,
}

// normaliseState turns "Launch requested", "launch-requested" and Google's
// "LAUNCH_STATE_LAUNCH_REQUESTED" alike into "LAUNCH_REQUESTED".
func normaliseState(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '.' {
			return '_'
		}
		return r
	}, s)
	return strings.TrimPrefix(s, "LAUNCH_STATE_")
}

// StatusOutcome is the result of one launch status poll, whatever happened.
type StatusOutcome struct {
	// Class is Succeeded when the answer was read and State holds the
	// launch's state; Retryable when the poll failed (a bad answer, a
	// timeout, a transport error), so the caller polls again at its next
	// interval; Throttled for HTTP 429, pushback as for a launch; Terminal
	// only when the arguments cannot make a request (empty agent number or
	// launch ID).
	Class Class
	// State is the launch state when Class is Succeeded, and "" otherwise.
	State LaunchState
	// Reported is the state as Kaleyra wrote it (escaped, at most 64
	// bytes), or "" when the answer held none.
	Reported string
	// Code is, when the poll failed, Kaleyra's code or a pseudo-code such
	// as CodeTimeout; on success, Kaleyra's code when the answer had one.
	Code string
	// Message explains the outcome: Kaleyra's message, why the state is
	// unknown, or why the poll failed. One line of at most 1000 bytes that
	// never holds the API key.
	Message string
	// HTTPStatus is the answer's status, 0 when there was no answer.
	HTTPStatus int
	// Raw is the answer's body when it was valid JSON of at most 1 MiB.
	Raw json.RawMessage
	// RetryAfter is, for Throttled, the wait Retry-After asked for.
	RetryAfter time.Duration
	// Duration is how long the call took.
	Duration time.Duration
}

// Failed reports whether the poll gave no launch state.
func (o StatusOutcome) Failed() bool { return o.Class != Succeeded }

// LaunchStatus asks Kaleyra for the state of launch request agentLaunchID
// of agent agentNo (GET on Options.StatusPath with agent_number and
// agent_launch_id in the query and the api-key header). Like Launch it never
// fails: a bad answer or no answer is a StatusOutcome too.
func (c *Client) LaunchStatus(ctx context.Context, agentNo, agentLaunchID string) StatusOutcome {
	start := time.Now()
	out := c.launchStatus(ctx, agentNo, agentLaunchID)
	out.Duration = time.Since(start)
	c.redactAll(&out.Code, &out.Message, &out.Reported)
	return out
}

func (c *Client) launchStatus(ctx context.Context, agentNo, agentLaunchID string) StatusOutcome {
	switch {
	case strings.TrimSpace(agentNo) == "":
		return StatusOutcome{Class: Terminal, Code: CodeTransport, Message: "building the request: the agent number is empty"}
	case strings.TrimSpace(agentLaunchID) == "":
		return StatusOutcome{Class: Terminal, Code: CodeTransport, Message: "building the request: the agent launch ID is empty"}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, errCallTimeout)
	defer cancel()
	u := c.statusEndpoint + "?agent_number=" + url.QueryEscape(agentNo) + "&agent_launch_id=" + url.QueryEscape(agentLaunchID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return StatusOutcome{Class: Terminal, Code: CodeTransport, Message: truncate("building the request: "+err.Error(), maxMessage)}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "rcslaunch")
	req.Header.Set("api-key", c.key.Reveal())

	resp, err := c.http.Do(req)
	if err != nil {
		return pollFailed(c.failed(ctx, err, 0, false, "polling the launch status"))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil && resp.StatusCode != http.StatusTooManyRequests {
		return pollFailed(c.failed(ctx, err, resp.StatusCode, false,
			fmt.Sprintf("while reading the body of an HTTP %d launch status answer", resp.StatusCode)))
	}
	return c.statusAnswer(resp.StatusCode, resp.Header, data)
}

// statusAnswer is what a poll makes of an answer: scrubbed of the API key,
// then read.
func (c *Client) statusAnswer(status int, header http.Header, body []byte) StatusOutcome {
	header, body, clean := c.scrub(header, body)
	out := ParseLaunchStatus(status, header, body)
	if !clean {
		out.Raw = c.redactRaw(out.Raw)
	}
	return out
}

// pollFailed turns the Outcome describing a failed call into the
// StatusOutcome of a failed poll: throttled stays throttled, the rest is
// tried again at the next interval.
func pollFailed(o Outcome) StatusOutcome {
	class := Retryable
	if o.Class == Throttled {
		class = Throttled
	}
	return StatusOutcome{
		Class:      class,
		Code:       o.Code,
		Message:    o.Message,
		HTTPStatus: o.HTTPStatus,
		Raw:        o.Raw,
		RetryAfter: o.RetryAfter,
	}
}

// ParseLaunchStatus reads one HTTP answer to a launch status poll. Only a
// 2xx JSON object without an error in it is an answer: its state is the
// first recognised state-like string (see stateFields), else StateUnknown.
// Anything else (redirects, 4xx, 5xx, HTML, invalid JSON) is a failed poll,
// HTTP 429 a Throttled one. It depends only on its arguments, so that it can
// be tested and fuzzed on its own; Raw is a copy, never body itself.
func ParseLaunchStatus(status int, header http.Header, body []byte) StatusOutcome {
	if status/100 != 2 {
		return failedAnswer(status, header, body)
	}
	if len(body) > maxBody {
		return pollFailed(badResponse(status, "body is larger than 1 MiB", body, nil, false))
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return pollFailed(badResponse(status, "empty body", nil, nil, false))
	}
	if !json.Valid(body) {
		return pollFailed(badResponse(status, "body is not valid JSON", body, nil, false))
	}
	raw := json.RawMessage(bytes.Clone(body))
	root := object(body)
	if root == nil {
		return pollFailed(badResponse(status, "body is not a JSON object", body, raw, false))
	}
	code, _ := jsontext.String(root["code"])
	if !plausibleCode(code) {
		code = ""
	}
	errCode, detail := errorDetail(root["error"])
	if s, ok := jsontext.String(root["error"]); ok {
		detail = s // an error given as a plain string
	}
	said := describe(root["message"], detail)
	if errCode != "" || strings.TrimSpace(detail) != "" {
		return failedWithError(status, code, errCode, said, raw)
	}
	out := StatusOutcome{Class: Succeeded, Code: code, Message: said, HTTPStatus: status, Raw: raw}
	out.State, out.Reported = findState(root)
	if out.State == StateUnknown {
		note := "no launch state in the answer"
		if out.Reported != "" {
			note = "launch state " + quote(out.Reported, maxCodeLen) + " not recognised"
		}
		if said != "" {
			note += "; Kaleyra says: " + said
		}
		out.Message = truncate(note, maxMessage)
	}
	return out
}

// failedAnswer describes a non-2xx answer as ParseResponse would, with the
// HTTP status named next to a Kaleyra code.
func failedAnswer(status int, header http.Header, body []byte) StatusOutcome {
	o := ParseResponse(status, header, body, nil)
	if o.Class != Throttled && o.Code != CodeBadResponse {
		if !strings.Contains(o.Message, fmt.Sprintf("(HTTP %d)", status)) {
			o.Message = fmt.Sprintf("%s (HTTP %d): %s", o.Code, status, o.Message)
		}
		o.Message = truncate(o.Message, maxMessage)
	}
	return pollFailed(o)
}

// failedWithError is the failed poll of a 2xx answer that carries a
// Kaleyra error: its state fields, if any, cannot be trusted.
func failedWithError(status int, code, errCode, said string, raw json.RawMessage) StatusOutcome {
	if code == "" {
		code = CodeBadResponse
	}
	msg := fmt.Sprintf("an error in an HTTP %d launch status answer", status)
	if errCode != "" {
		msg += " (" + errCode + ")"
	}
	if said != "" {
		msg += ": " + said
	}
	return StatusOutcome{Class: Retryable, Code: code, Message: truncate(msg, maxMessage), HTTPStatus: status, Raw: raw}
}

// stateFields are the names a state may go by, most specific first, in
// their normalised form (see object).
var stateFields = []string{"agentlaunchstatus", "launchstatus", "launchstate", "status", "state"}

// findState looks for a state in data, data.launch, the root and
// root.launch, in that order (data may also be an array of one object). It
// returns the first recognised state with its text, else StateUnknown with
// the first state-like string found, if any.
func findState(root map[string]json.RawMessage) (LaunchState, string) {
	data := object(root["data"])
	if data == nil {
		data = onlyElement(root["data"])
	}
	var first string
	for _, obj := range []map[string]json.RawMessage{data, object(data["launch"]), root, object(root["launch"])} {
		for _, name := range stateFields {
			s, ok := jsontext.String(obj[name])
			if s = strings.TrimSpace(s); !ok || s == "" {
				continue
			}
			if first == "" {
				first = s
			}
			if len(s) <= maxCodeLen {
				if st, ok := stateNames[normaliseState(s)]; ok {
					return st, escape(s, maxCodeLen)
				}
			}
		}
	}
	return StateUnknown, escape(first, maxCodeLen)
}

// object decodes raw as a JSON object with its keys normalised: lower case,
// without '_' and '-', so that "launch_status", "launchStatus" and
// "Launch-Status" are one key. Of keys that normalise alike, the first in
// byte order wins, so that the result does not depend on map order. It
// returns nil when raw is not an object.
func object(raw json.RawMessage) map[string]json.RawMessage {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]json.RawMessage, len(m))
	for _, k := range keys {
		n := strings.ToLower(keySeparators.Replace(k))
		if _, seen := out[n]; !seen {
			out[n] = m[k]
		}
	}
	return out
}

// keySeparators are dropped from keys by object.
var keySeparators = strings.NewReplacer("_", "", "-", "")

// onlyElement returns the object in raw when raw is an array of exactly one
// object, and nil otherwise.
func onlyElement(raw json.RawMessage) map[string]json.RawMessage {
	var a []json.RawMessage
	if json.Unmarshal(raw, &a) != nil || len(a) != 1 {
		return nil
	}
	return object(a[0])
}
