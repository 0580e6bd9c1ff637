package kaleyra

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
)

// This file keeps, word for word but for their names, the answer path as it
// was before scrub learned to pass over a clean answer (secret.Matcher.Clean)
// and ParseResponse to decode an answer once: the oracle of the tests that
// the new path gives the same outcomes, and the baseline of its benchmarks.

// oldEnvelope is Kaleyra's answer. Fields stay raw until needed because their
// types vary: "data" is an object on success but [] on failure.
type oldEnvelope struct {
	Code    json.RawMessage `json:"code"`
	Message json.RawMessage `json:"message"`
	Data    json.RawMessage `json:"data"`
	Error   json.RawMessage `json:"error"`
}

// oldParseResponse classifies one HTTP answer to a launch call. retry holds the
// Kaleyra codes that are Retryable. It depends only on its arguments (and on
// the clock for a Retry-After date without a Date header), so it can be
// tested and fuzzed on its own. Raw is a copy, never body itself.
func oldParseResponse(status int, header http.Header, body []byte, retry map[string]bool) Outcome {
	if status == http.StatusTooManyRequests {
		return oldThrottled(header, body)
	}
	if status >= 300 && status < 400 {
		cause := fmt.Sprintf("redirect to %s not followed, since it would carry the api-key elsewhere", quote(header.Get("Location"), excerptLen))
		return badResponse(status, cause, body, validJSON(body), false)
	}
	if len(body) > maxBody {
		return badResponse(status, "body is larger than 1 MiB", body, nil, false)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return badResponse(status, "empty body", nil, nil, false)
	}
	// Unmarshal checks the whole body before decoding it, so an object needs
	// no separate json.Valid pass.
	var env oldEnvelope
	if trimmed[0] != '{' || json.Unmarshal(body, &env) != nil {
		if !json.Valid(body) {
			return badResponse(status, "body is not valid JSON", body, nil, false)
		}
		return badResponse(status, "body is not a JSON object", body, bytes.Clone(body), false)
	}
	raw := json.RawMessage(bytes.Clone(body))
	if env.Code == nil {
		return badResponse(status, `body has no "code"`, body, raw, false)
	}
	code, ok := jsontext.String(env.Code)
	if !ok {
		return badResponse(status, fmt.Sprintf(`"code" is %s, not a string`, jsonKind(env.Code)), body, raw, false)
	}
	if !plausibleCode(code) {
		return badResponse(status, fmt.Sprintf(`"code" %s is not a Kaleyra code`, quote(code, maxCodeLen)), body, raw, false)
	}
	errCode, detail := oldErrorDetail(env.Error)
	said := describe(env.Message, detail)
	out := Outcome{
		Code:       code,
		Message:    said,
		ErrorCode:  errCode,
		HTTPStatus: status,
		Raw:        raw,
	}
	switch {
	case code == codeCreated:
		id, ok := oldLaunchID(env.Data)
		if !ok {
			cause := codeCreated + " (launch request created) without a usable data.launch.agent_launch_id"
			if said != "" {
				cause += "; Kaleyra says: " + said
			}
			bad := badResponse(status, cause, nil, raw, true)
			bad.ErrorCode = errCode
			return bad
		}
		out.Class = Succeeded
		out.AgentLaunchID = id
	case retry[code]:
		out.Class = Retryable
	default:
		out.Class = Terminal
	}
	if out.Message == "" && out.Class != Succeeded {
		out.Message = fmt.Sprintf("%s without a message (HTTP %d)", code, status)
	}
	return out
}

// oldThrottled classifies an HTTP 429, which is pushback whatever its body says.
func oldThrottled(header http.Header, body []byte) Outcome {
	out := Outcome{
		Class:      Throttled,
		Code:       CodeThrottled,
		HTTPStatus: http.StatusTooManyRequests,
		RetryAfter: retryAfter(header),
	}
	msg := "throttled by Kaleyra (HTTP 429)"
	var env oldEnvelope
	out.Raw = validJSON(body)
	switch {
	case len(body) > maxBody:
		msg += ": body larger than 1 MiB"
	case out.Raw != nil:
		if json.Unmarshal(body, &env) == nil {
			var detail string
			out.ErrorCode, detail = oldErrorDetail(env.Error)
			if m := describe(env.Message, detail); m != "" {
				msg += ": " + m
			}
		}
	default:
		if ex := excerpt(body); ex != "" {
			msg += ": " + ex
		}
	}
	if out.RetryAfter > 0 {
		msg += "; retry after " + out.RetryAfter.String()
	}
	out.Message = truncate(msg, maxMessage)
	return out
}

// oldLaunchID extracts data.launch.agent_launch_id, if it is a plausible ID.
func oldLaunchID(data json.RawMessage) (string, bool) {
	var d struct {
		Launch struct {
			AgentLaunchID json.RawMessage `json:"agent_launch_id"`
		} `json:"launch"`
	}
	if json.Unmarshal(data, &d) != nil {
		return "", false
	}
	id, ok := jsontext.String(d.Launch.AgentLaunchID)
	if !ok || len(id) == 0 || len(id) > maxIDLen || !printableASCII(id) {
		return "", false
	}
	return id, true
}

// oldErrorDetail extracts error.error_code and error.error_message, ignoring
// anything that is not an object of strings (such as the success's {}).
// An error_message that is itself a JSON object with a "message", as in
// RCS904's {"status":"FAILED","message":"..."}, is reduced to that message.
func oldErrorDetail(raw json.RawMessage) (code, message string) {
	var e struct {
		Code    json.RawMessage `json:"error_code"`
		Message json.RawMessage `json:"error_message"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return "", ""
	}
	code, _ = jsontext.String(e.Code)
	message, _ = jsontext.String(e.Message)
	if s := strings.TrimSpace(message); strings.HasPrefix(s, "{") {
		var inner struct {
			Message json.RawMessage `json:"message"`
		}
		if json.Unmarshal([]byte(s), &inner) == nil {
			if m, ok := jsontext.String(inner.Message); ok && strings.TrimSpace(m) != "" {
				message = m
			}
		}
	}
	return escape(code, maxCodeLen), message
}

// oldScrub replaces the API key wherever a server echoed it into the body or
// the Location header, before any of it is quoted in a message or kept. An
// echo need not be byte for byte (see secret.String.In): a JSON body is
// redacted in its decoded strings and stays valid JSON, so that the answer
// can still be read and kept; any other body is redacted as text.
func (c *Client) oldScrub(header http.Header, body []byte) (http.Header, []byte) {
	key := c.match
	if json.Valid(body) {
		body = key.RedactJSON(body)
	} else if key.In(string(body)) {
		body = []byte(key.Redact(string(body)))
	}
	if loc := header.Get("Location"); key.In(loc) {
		header = header.Clone()
		header.Set("Location", key.Redact(loc))
	}
	return header, body
}

// oldRedact removes the API key from every string of out, as a last guard for
// the messages of errors this package does not control.
func (c *Client) oldRedact(out *Outcome) {
	c.oldRedactAll(&out.Raw, &out.Code, &out.Message, &out.ErrorCode, &out.AgentLaunchID)
}

// oldRedactAll replaces the API key, in any spelling, in each of strs and in
// raw, and drops raw if it still holds the key.
func (c *Client) oldRedactAll(raw *json.RawMessage, strs ...*string) {
	key := c.match
	for _, s := range strs {
		*s = key.Redact(*s)
	}
	if key.In(string(*raw)) {
		*raw = key.RedactJSON(*raw)
		if key.In(string(*raw)) {
			*raw = nil
		}
	}
}
