package kaleyra

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
)

// Class is what an Outcome means for the job: done, try again, give up, or
// slow down. The zero Class is invalid, so that an Outcome nobody filled in
// never reads as a success.
type Class int

const (
	// Succeeded means Kaleyra created the launch request (RCS902).
	Succeeded Class = iota + 1
	// Retryable means Kaleyra answered with a code configured as transient.
	Retryable
	// Terminal means the launch failed, or its fate is unknown (see
	// Outcome.Uncertain), and sending it again as is will not help.
	Terminal
	// Throttled means Kaleyra pushed back with HTTP 429: send later and
	// slower, without counting an attempt.
	Throttled
)

var classNames = [...]string{
	Succeeded: "succeeded",
	Retryable: "retryable",
	Terminal:  "terminal",
	Throttled: "throttled",
}

// String returns the class in lower case, such as "retryable".
func (c Class) String() string {
	if c >= Succeeded && c <= Throttled {
		return classNames[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Pseudo-codes, used in Outcome.Code when Kaleyra gave no usable code.
const (
	CodeTimeout     = "TIMEOUT"         // no answer in time
	CodeTransport   = "TRANSPORT_ERROR" // no answer: connection, DNS, TLS or cancellation
	CodeBadResponse = "BAD_RESPONSE"    // an answer that cannot be classified
	CodeThrottled   = "THROTTLED"       // HTTP 429
)

// codeCreated is Kaleyra's code for "Agent launch request created successfully".
const codeCreated = "RCS902"

// Outcome is the result of one launch call, whatever happened.
type Outcome struct {
	// Class says what to do with the job next.
	Class Class
	// Code is Kaleyra's code (RCS902, RCS502, RCS904, ...) or a pseudo-code
	// such as CodeTimeout.
	Code string
	// Message explains the outcome to an operator: Kaleyra's message and
	// error detail, or for a pseudo-code its cause. It is one line of at
	// most 1000 bytes and never holds the API key.
	Message string
	// ErrorCode is Kaleyra's error.error_code, when present.
	ErrorCode string
	// HTTPStatus is the answer's status, 0 when there was no answer.
	HTTPStatus int
	// AgentLaunchID is Kaleyra's ID of the launch request, on success.
	AgentLaunchID string
	// Raw is the answer's body when it was valid JSON of at most 1 MiB.
	Raw json.RawMessage
	// Uncertain reports that the request may have reached Kaleyra and
	// launched the agent although there is no clear answer, so that sending
	// it again could launch the agent twice: a timeout or lost connection
	// after the request was written, a 2xx answer that cannot be
	// classified, or RCS902 without an agent_launch_id.
	Uncertain bool
	// RetryAfter is, for Throttled, the wait the Retry-After header asked
	// for (capped at 24h), or 0 when it asked for none.
	RetryAfter time.Duration
	// Duration is how long the call took.
	Duration time.Duration
}

// Bounds on what an answer may make us read, keep or print.
const (
	maxBody       = 1 << 20 // bytes of an answer body
	excerptLen    = 200     // bytes of body quoted in a message
	maxPart       = 300     // bytes of one of Kaleyra's strings in a message
	maxMessage    = 1000    // bytes of a whole message
	maxCodeLen    = 64      // bytes of a code or error code
	maxIDLen      = 128     // bytes of an agent_launch_id
	maxRetryAfter = 24 * time.Hour
)

// envelope is Kaleyra's answer. Fields stay raw until needed because their
// types vary: "data" is an object on success but [] on failure.
type envelope struct {
	Code, Message, Data, Error json.RawMessage
}

// readEnvelope reads body, a JSON object that json.Valid has accepted, as
// json.Unmarshal would read it into an envelope tagged "code", "message",
// "data" and "error": of the members a field's name matches, the last
// counts. Unmarshal would cost several times the json.Valid pass.
func readEnvelope(body []byte) envelope {
	var env envelope
	for name, v := range jsontext.Members(body) {
		switch {
		case named(name, "code"):
			env.Code = v
		case named(name, "message"):
			env.Message = v
		case named(name, "data"):
			env.Data = v
		case named(name, "error"):
			env.Error = v
		}
	}
	return env
}

// ParseResponse classifies one HTTP answer to a launch call. retry holds the
// Kaleyra codes that are Retryable. It depends only on its arguments (and on
// the clock for a Retry-After date without a Date header), so it can be
// tested and fuzzed on its own. Raw is a copy, never body itself.
func ParseResponse(status int, header http.Header, body []byte, retry map[string]bool) Outcome {
	if status == http.StatusTooManyRequests {
		return throttled(header, body)
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
	if !json.Valid(body) {
		return badResponse(status, "body is not valid JSON", body, nil, false)
	}
	if trimmed[0] != '{' {
		return badResponse(status, "body is not a JSON object", body, bytes.Clone(body), false)
	}
	env := readEnvelope(body)
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
	errCode, detail := errorDetail(env.Error)
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
		id, ok := launchID(env.Data)
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

// throttled classifies an HTTP 429, which is pushback whatever its body says.
func throttled(header http.Header, body []byte) Outcome {
	out := Outcome{
		Class:      Throttled,
		Code:       CodeThrottled,
		HTTPStatus: http.StatusTooManyRequests,
		RetryAfter: retryAfter(header),
	}
	msg := "throttled by Kaleyra (HTTP 429)"
	out.Raw = validJSON(body)
	switch {
	case len(body) > maxBody:
		msg += ": body larger than 1 MiB"
	case out.Raw != nil:
		// JSON other than an object has no message or error to quote.
		if jsontext.Kind(body) == '{' {
			env := readEnvelope(body)
			var detail string
			out.ErrorCode, detail = errorDetail(env.Error)
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

// badResponse builds the Terminal BAD_RESPONSE outcome for an answer that
// cannot be classified. A 2xx status makes it Uncertain: Kaleyra may well
// have created the launch.
func badResponse(status int, cause string, body []byte, raw json.RawMessage, uncertain bool) Outcome {
	msg := fmt.Sprintf("%s (HTTP %d)", cause, status)
	if ex := excerpt(body); ex != "" {
		msg += ": " + ex
	}
	return Outcome{
		Class:      Terminal,
		Code:       CodeBadResponse,
		Message:    truncate(msg, maxMessage),
		HTTPStatus: status,
		Raw:        raw,
		Uncertain:  uncertain || status/100 == 2,
	}
}

// validJSON returns a copy of body when it is valid JSON of at most 1 MiB.
func validJSON(body []byte) json.RawMessage {
	if len(body) > maxBody || !json.Valid(body) {
		return nil
	}
	return bytes.Clone(body)
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date
// (measured from the Date header when there is one).
func retryAfter(header http.Header) time.Duration {
	v := strings.TrimSpace(header.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n >= uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter // only too large a number fails to parse
		}
		return time.Duration(n) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	now, err := http.ParseTime(header.Get("Date"))
	if err != nil {
		now = time.Now()
	}
	return min(max(at.Sub(now), 0), maxRetryAfter)
}

// launchID extracts data.launch.agent_launch_id, if it is a plausible ID.
// data, valid JSON, is read as json.Unmarshal would read it into
//
//	struct{ Launch struct{ AgentLaunchID json.RawMessage `json:"agent_launch_id"` } `json:"launch"` }
//
// without decoding it again: a data or launch that is neither an object nor
// null makes Unmarshal fail, a null one changes nothing, the members of
// every launch fill the one struct, and the last agent_launch_id counts.
func launchID(data json.RawMessage) (string, bool) {
	if jsontext.Kind(data) != '{' {
		return "", false
	}
	var raw []byte
	for name, launch := range jsontext.Members(data) {
		if !named(name, "launch") {
			continue
		}
		if jsontext.Kind(launch) != '{' {
			if jsontext.Kind(launch) == 'n' {
				continue
			}
			return "", false
		}
		for name, v := range jsontext.Members(launch) {
			if named(name, "agent_launch_id") {
				raw = v
			}
		}
	}
	id, ok := jsontext.String(raw)
	if !ok || len(id) == 0 || len(id) > maxIDLen || !printableASCII(id) {
		return "", false
	}
	return id, true
}

// errorDetail extracts error.error_code and error.error_message, ignoring
// anything that is not an object of strings (such as the success's {}).
// An error_message that is itself a JSON object with a "message", as in
// RCS904's {"status":"FAILED","message":"..."}, is reduced to that message.
// raw, valid JSON, is read as launchID reads data.
func errorDetail(raw json.RawMessage) (code, message string) {
	if jsontext.Kind(raw) != '{' {
		return "", ""
	}
	var rawCode, rawMessage []byte
	for name, v := range jsontext.Members(raw) {
		switch {
		case named(name, "error_code"):
			rawCode = v
		case named(name, "error_message"):
			rawMessage = v
		}
	}
	code, _ = jsontext.String(rawCode)
	message, _ = jsontext.String(rawMessage)
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

// named reports whether name, a member name as quoted in JSON, names the
// struct field called field, as json.Unmarshal matches them: exactly, or
// else by strings.EqualFold.
func named(name []byte, field string) bool {
	if len(name) < 2 {
		return false
	}
	if text := name[1 : len(name)-1]; bytes.IndexByte(text, '\\') < 0 {
		// Text without escapes decodes to itself; that invalid UTF-8 would
		// become U+FFFD does not matter, as neither is in a field's name.
		return bytes.EqualFold(text, []byte(field))
	}
	s, _ := jsontext.String(name)
	return strings.EqualFold(s, field)
}

// describe joins Kaleyra's message and its error detail, leaving the detail
// out when it only repeats the message.
func describe(rawMessage json.RawMessage, detail string) string {
	msg, _ := jsontext.String(rawMessage)
	msg = escape(strings.TrimSpace(msg), maxPart)
	detail = escape(strings.TrimSpace(detail), maxPart)
	core := strings.ToLower(strings.TrimRight(detail, ". "))
	if core == "" || strings.Contains(strings.ToLower(msg), core) {
		return msg
	}
	if msg == "" {
		return detail
	}
	return msg + ": " + detail
}

// jsonKind names the type of a JSON value, for messages.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "empty"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// plausibleCode reports whether code can be one of Kaleyra's codes: short,
// printable, and not one of our pseudo-codes, which it would be mistaken for.
func plausibleCode(code string) bool {
	switch code {
	case "", CodeTimeout, CodeTransport, CodeBadResponse, CodeThrottled:
		return false
	}
	return len(code) <= maxCodeLen && printableASCII(code)
}

// printableASCII reports whether s has only ASCII letters, digits and
// punctuation (no spaces or control characters).
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// excerpt returns the start of body for a message, escaped and bounded.
func excerpt(body []byte) string {
	body = bytes.TrimSpace(body)
	// An escaped byte takes at most 6 bytes, so this prefix is plenty.
	return escape(string(body[:min(len(body), 4*excerptLen)]), excerptLen)
}

// quote returns s as a Go string literal of at most about limit bytes.
func quote(s string, limit int) string {
	return strconv.Quote(truncate(s, limit))
}

// escape makes s safe to print in one log line: invalid UTF-8 and control
// and format characters (newlines, bidi overrides) become escapes. The result
// is at most limit bytes, ending in "…" when s was cut.
func escape(s string, limit int) string {
	const ellipsis = "…"
	if len(s) <= limit && !needsEscape(s) {
		return s
	}
	var b strings.Builder
	fits := 0 // length of b when it last had room left for the ellipsis
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size == 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\n':
			piece = `\n`
		case r == '\r':
			piece = `\r`
		case r == '\t':
			piece = `\t`
		case unicode.In(r, unicode.Cc, unicode.Cf):
			piece = fmt.Sprintf(`\u%04x`, r)
		default:
			piece = s[i : i+size]
		}
		if b.Len()+len(piece) > limit {
			return b.String()[:fits] + ellipsis
		}
		b.WriteString(piece)
		if b.Len() <= limit-len(ellipsis) {
			fits = b.Len()
		}
		i += size
	}
	return b.String()
}

// needsEscape reports whether escape would change s (apart from cutting it).
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			// Non-ASCII needs a closer look; it is rare in Kaleyra's answers.
			if c < 0x80 {
				return true
			}
			for _, r := range s[i:] {
				if r == utf8.RuneError || unicode.In(r, unicode.Cc, unicode.Cf) {
					return true
				}
			}
			return false
		}
	}
	return false
}

// truncate cuts s to at most limit bytes on a rune boundary, marking the cut.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := limit - len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
