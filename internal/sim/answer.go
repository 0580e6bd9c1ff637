package sim

import (
	"bytes"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
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

// successBody is Kaleyra's RCS902 answer. Code is a string except for
// StepCodeNotString.
type successBody struct {
	Code    any         `json:"code"`
	Message string      `json:"message"`
	Data    successData `json:"data"`
	Error   struct{}    `json:"error"`
}

type successData struct {
	Launch   launchEcho   `json:"launch"`
	Regions  []regionEcho `json:"regions"`
	Contacts []struct{}   `json:"contacts"`
}

// launchEcho is the launch object of a success answer, in the order of
// Kaleyra's sample. Fields are echoed as received; like the sample, it does
// not echo agent_no.
type launchEcho struct {
	ProviderLaunchID        json.RawMessage `json:"provider_launch_id,omitempty"`
	LaunchName              json.RawMessage `json:"launch_name,omitempty"`
	LaunchType              int64           `json:"launch_type"`
	OptinDescription        json.RawMessage `json:"optin_description"`
	TriggerDescription      json.RawMessage `json:"trigger_description"`
	InteractionsDescription json.RawMessage `json:"interactions_description"`
	OptoutDescription       json.RawMessage `json:"optout_description"`
	AgentAccessInstructions json.RawMessage `json:"agent_access_instructions"`
	VideoURIs               json.RawMessage `json:"video_uris,omitempty"`
	ScreenshotURIs          json.RawMessage `json:"screenshot_uris,omitempty"`
	Status                  string          `json:"status"`
	CreateDate              string          `json:"create_date"`
	ModifiedDate            string          `json:"modified_date"`
	AgentLaunchID           string          `json:"agent_launch_id,omitempty"`
}

type regionEcho struct {
	RegionID    json.RawMessage `json:"region_id,omitempty"`
	Region      json.RawMessage `json:"region"`
	EntryPoint  int             `json:"entry_point"`
	LaunchState int             `json:"launch_state"`
	DirtyFlag   string          `json:"dirty_flag"`
}

// answer writes the answer for step st. detail overrides the failure's
// default error_message; p is the request, for the success echo.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, st Step, detail string, p *payload) {
	h := w.Header()
	switch st {
	case StepSucceed, StepNoLaunchID, StepCodeNotString:
		writeJSON(w, http.StatusOK, success(p, st))
	case StepTruncated:
		b := marshal(success(p, st))
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(b[:len(b)/2])
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

// success builds the RCS902 answer to p, as modified by st, with the
// agent_launch_id serveLaunch issued.
func success(p *payload, st Step) successBody {
	now := time.Now().UTC().Format(dateLayout)
	l := p.launch
	echo := launchEcho{
		ProviderLaunchID:        given(l["provider_launch_id"]),
		LaunchName:              given(l["launch_name"]),
		LaunchType:              p.launchType,
		OptinDescription:        l["optin_description"],
		TriggerDescription:      l["trigger_description"],
		InteractionsDescription: l["interactions_description"],
		OptoutDescription:       l["optout_description"],
		AgentAccessInstructions: l["agent_access_instructions"],
		VideoURIs:               given(l["video_uris"]),
		ScreenshotURIs:          given(l["screenshot_uris"]),
		Status:                  "ACTIVE",
		CreateDate:              now,
		ModifiedDate:            now,
	}
	if st != StepNoLaunchID {
		echo.AgentLaunchID = p.launchID
	}
	regions := make([]regionEcho, len(p.regions))
	for i, r := range p.regions {
		regions[i] = regionEcho{RegionID: given(r["region_id"]), Region: r["region"], DirtyFlag: "NEW"}
	}
	var code any = string(StepSucceed)
	if st == StepCodeNotString {
		code = 902
	}
	return successBody{
		Code:    code,
		Message: "Agent launch request created successfully",
		Data:    successData{Launch: echo, Regions: regions, Contacts: []struct{}{}},
	}
}

// given drops an explicit null, so that an optional field sent as null is
// echoed like one left out.
func given(raw json.RawMessage) json.RawMessage {
	if raw == nil || isNull(raw) {
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
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
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
