package sim

import (
	"bytes"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
)

// dateLayout is how Kaleyra writes create_date and modified_date, e.g.
// "Jan 12, 2026, 12:42:58 PM". The simulator writes them in UTC.
const dateLayout = "Jan 2, 2006, 3:04:05 PM"

// hugeSize is the size of a StepHuge body.
const hugeSize = 10 << 20

// failureBody is Kaleyra's failure answer; data is always an empty array.
type failureBody struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Data    []struct{}    `json:"data"`
	Error   failureDetail `json:"error"`
}

type failureDetail struct {
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

// answer writes the answer for step st. detail overrides the failure's
// default error_message; p is the request, for the success echo.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, st Step, detail string, p *payload) {
	h := w.Header()
	switch st {
	case StepSucceed, StepNoLaunchID, StepCodeNotString, StepTruncated:
		b := success(p, st, time.Now())
		if st == StepTruncated {
			b = b[:len(b)/2]
		}
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	case StepThrottle:
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"message":"Too Many Requests"}`))
	case StepHang:
		select {
		case <-r.Context().Done():
		case <-s.stop:
			// Drop the connection rather than let net/http send an
			// empty 200 for a handler that wrote nothing.
			panic(http.ErrAbortHandler)
		}
	case StepEmpty:
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	case StepHTML:
		h.Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte(badGatewayPage))
	case StepHuge:
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		writeHuge(w)
	default:
		if st == stepMethod {
			h.Set("Allow", http.MethodPost)
		}
		writeFailure(w, st, detail)
	}
}

// writeFailure writes the Kaleyra failure body of st with its HTTP status;
// detail overrides the default error_message.
func writeFailure(w http.ResponseWriter, st Step, detail string) {
	f := failures[st]
	if detail == "" {
		detail = f.errorMessage
	}
	writeJSON(w, status[st], failureBody{
		Code:    string(st),
		Message: f.message,
		Data:    []struct{}{},
		Error:   failureDetail{ErrorCode: f.errorCode, ErrorMessage: detail},
	})
}

// success returns the RCS902 answer to p, as modified by st, with the
// agent_launch_id serveLaunch issued and dates at now, in the order of
// Kaleyra's sample. It writes the bytes that marshal wrote for it as a
// struct, but directly: encoding/json's reflection, and its validation of
// every echoed json.RawMessage, cost as much as decoding the request
// (BENCHMARKS.md). Like the sample, the launch echo leaves out agent_no; the
// other fields are echoed as received, written as appendRaw writes them.
func success(p *payload, st Step, now time.Time) []byte {
	// Each field is looked up once, for the size of the answer, for the
	// depth check and for the answer itself.
	var optional [len(optionalEchoed)]json.RawMessage
	var required [len(requiredEchoed)]json.RawMessage
	size := 512 // all but the echoed values
	for i, name := range optionalEchoed {
		optional[i] = given(p.launch[name])
		if !fitsDepth(optional[i], inLaunch) {
			return nil
		}
		size += len(optional[i])
	}
	for i, name := range requiredEchoed {
		required[i] = p.launch[name]
		size += len(required[i])
	}
	for _, r := range p.regions {
		if !fitsDepth(r["region_id"], inRegion) {
			return nil
		}
		size += 96 + len(r["region_id"]) + len(r["region"])
	}

	b := make([]byte, 0, size)
	if st == StepCodeNotString {
		b = append(b, `{"code":902`...)
	} else {
		b = append(b, `{"code":"RCS902"`...)
	}
	b = append(b, `,"message":"Agent launch request created successfully","data":{"launch":{`...)
	b = appendOptional(b, optionalEchoed[0], optional[0])
	b = appendOptional(b, optionalEchoed[1], optional[1])
	b = strconv.AppendInt(appendName(b, "launch_type"), p.launchType, 10)
	for i, name := range requiredEchoed {
		b = appendRaw(appendName(b, name), required[i])
	}
	b = appendOptional(b, optionalEchoed[2], optional[2])
	b = appendOptional(b, optionalEchoed[3], optional[3])
	// The status, the dates and the UUID have nothing to escape.
	var buf [32]byte
	date := now.UTC().AppendFormat(buf[:0], dateLayout)
	b = append(b, `,"status":"ACTIVE","create_date":"`...)
	b = append(b, date...)
	b = append(b, `","modified_date":"`...)
	b = append(b, date...)
	b = append(b, '"')
	if st != StepNoLaunchID && p.launchID != "" {
		b = append(b, `,"agent_launch_id":"`...)
		b = append(b, p.launchID...)
		b = append(b, '"')
	}
	b = append(b, `},"regions":[`...)
	for i, r := range p.regions {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendOptional(b, "region_id", given(r["region_id"]))
		b = appendRaw(appendName(b, "region"), r["region"])
		b = append(b, `,"entry_point":0,"launch_state":0,"dirty_flag":"NEW"}`...)
	}
	return append(b, `],"contacts":[]},"error":{}}`...)
}

// optionalEchoed are the launch fields a success answer echoes when they
// are given, any JSON value, and requiredEchoed those it always echoes,
// strings. Both are in the order of Kaleyra's sample, where launch_type and
// the required ones come after the first two optional ones.
var (
	optionalEchoed = [...]string{"provider_launch_id", "launch_name", "video_uris", "screenshot_uris"}
	requiredEchoed = [...]string{
		"optin_description", "trigger_description", "interactions_description",
		"optout_description", "agent_access_instructions",
	}
)

// maxDepth is the deepest encoding/json nests arrays and objects, in what
// it decodes (json.Valid) as in what it encodes.
const maxDepth = 10000

// An echoed value is one level deeper in the answer than in the request,
// where it has one parent less: json.Valid allows a request that nests it
// one level too deep for the answer, which encoding/json then failed to
// encode, so that marshal wrote nothing at all. Only optional fields can be
// that deep; the required ones are strings.
const (
	inLaunch = 3 // parents in the answer: the answer, data and launch objects
	inRegion = 4 // the answer, data, regions and a region
)

// fitsDepth reports whether raw nests its arrays and objects no deeper than
// maxDepth within parents of them. Each level takes two bytes, so that a
// short value need not be looked at.
func fitsDepth(raw []byte, parents int) bool {
	return parents+len(raw)/2 <= maxDepth || parents+nesting(raw) <= maxDepth
}

// appendName appends the name of an object member, after a comma unless it
// is the object's first.
func appendName(b []byte, name string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, `":`...)
}

// appendOptional appends the member name: raw unless raw is nil, as
// omitempty left out a nil RawMessage; given has made an explicit null nil.
func appendOptional(b []byte, name string, raw json.RawMessage) []byte {
	if raw == nil {
		return b
	}
	return appendRaw(appendName(b, name), raw)
}

// appendRaw appends raw, a value from the request and so valid JSON, as
// encoding/json, built on encoding/json/v2 in this Go, writes a
// json.RawMessage without HTML escaping: null when nil, else compacted,
// that is without the white space outside its strings, and with U+2028 and
// U+2029 escaped in its strings, which it does for JavaScript whatever the
// HTML escaping. The rest is written as it is: escapes, numbers, even
// invalid UTF-8.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	if raw == nil {
		return append(b, "null"...)
	}
	if raw[0] == '"' { // the usual case, a string and nothing else
		return appendLineSepsEscaped(b, raw)
	}
	for i := 0; i < len(raw); {
		switch raw[i] {
		case ' ', '\t', '\r', '\n':
			i++
		case '"':
			end := jsontext.StringEnd(raw, i)
			b = appendLineSepsEscaped(b, raw[i:end])
			i = end
		default: // up to the next string or white space
			end := len(raw)
			if n := bytes.IndexAny(raw[i:], " \t\r\n\""); n >= 0 {
				end = i + n
			}
			b = append(b, raw[i:end]...)
			i = end
		}
	}
	return b
}

// appendLineSepsEscaped appends the JSON string s with U+2028 and U+2029 escaped.
// Both are encoded as E2 80 A8 and E2 80 A9 in UTF-8, where E2 only ever
// starts a character, so finding those bytes is enough.
func appendLineSepsEscaped(b, s []byte) []byte {
	for {
		i := bytes.Index(s, lineSep)
		if i < 0 || i+2 >= len(s) {
			return append(b, s...)
		}
		if c := s[i+2]; c != 0xA8 && c != 0xA9 {
			b = append(b, s[:i+2]...)
			s = s[i+2:]
			continue
		}
		b = append(b, s[:i]...)
		b = append(b, `\u202`...)
		b = append(b, "89"[s[i+2]-0xA8])
		s = s[i+3:]
	}
}

// lineSep is what U+2028 and U+2029 start with in UTF-8.
var lineSep = []byte("\xe2\x80")

// given drops an explicit null, so that an optional field sent as null is
// echoed like one left out.
func given(raw json.RawMessage) json.RawMessage {
	if raw == nil || jsontext.IsNull(raw) {
		return nil
	}
	return raw
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	crand.Read(b[:]) // never fails, by crypto/rand's contract
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// marshal encodes v as JSON without HTML escaping, so that echoed text comes
// back as sent.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Only the package's own answer types are encoded; they cannot fail.
	_ = enc.Encode(v)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(marshal(v))
}

// padding is written over and over for a StepHuge body, so that a 10 MiB
// answer costs 32 KiB of memory however many are being sent.
var padding = bytes.Repeat([]byte("x"), 32<<10)

// writeHuge writes a 10 MiB success-looking JSON object, stopping early if
// the client goes away.
func writeHuge(w http.ResponseWriter) {
	const (
		head = `{"code":"RCS902","message":"Agent launch request created successfully","data":{"padding":"`
		tail = `"},"error":{}}`
	)
	if _, err := w.Write([]byte(head)); err != nil {
		return
	}
	for n := hugeSize - len(head) - len(tail); n > 0; {
		chunk := padding[:min(n, len(padding))]
		if _, err := w.Write(chunk); err != nil {
			return
		}
		n -= len(chunk)
	}
	w.Write([]byte(tail))
}

// badGatewayPage is what a reverse proxy in front of the API answers when
// the service behind it is down.
const badGatewayPage = `<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
`
