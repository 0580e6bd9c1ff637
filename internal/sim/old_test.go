package sim

import (
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
)

// The launch handler as it was before parsePayload and success did without
// encoding/json's reflection and newUUID without fmt, copied verbatim but
// for the names, which take the prefix old: the differential tests check
// that the new code gives the same results, and the benchmarks measure both
// in the same run.

// oldParsePayload decodes body. It is lenient like a generic JSON API: unknown
// fields are ignored and optional ones are not checked.
func oldParsePayload(body []byte) payload {
	var p payload
	if !json.Valid(body) {
		// Only a bad body is decoded for nothing, for the error's text:
		// decoding every body twice was a tenth of the simulator's CPU
		// at thousands of calls a second (BENCHMARKS.md).
		var v any
		p.jsonProblem = json.Unmarshal(body, &v).Error()
		return p
	}
	p.validJSON = true
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || top == nil { // top is nil for null
		p.jsonProblem = "request body must be a JSON object"
		return p
	}
	if json.Unmarshal(top["launch"], &p.launch) != nil || p.launch == nil {
		p.problem = provError(missingFields)
		return p
	}
	_ = json.Unmarshal(p.launch["agent_no"], &p.agentNo)
	for _, name := range requiredFields {
		var s string
		if json.Unmarshal(p.launch[name], &s) != nil || strings.TrimSpace(s) == "" {
			p.problem = provError(missingFields)
			return p
		}
	}
	lt, ok := oldLaunchType(p.launch["launch_type"])
	if !ok {
		p.problem = provError("Invalid launch_type in launch payload")
		return p
	}
	p.launchType = lt
	if raw, ok := top["regions"]; ok && !jsontext.IsNull(raw) {
		if json.Unmarshal(raw, &p.regions) != nil {
			p.problem = provError("Invalid regions in launch payload")
			return p
		}
		for _, r := range p.regions {
			var s string
			if json.Unmarshal(r["region"], &s) != nil || strings.TrimSpace(s) == "" {
				p.problem = provError(missingFields)
				return p
			}
		}
	}
	return p
}

// oldLaunchType reads launch_type, which the request carries as a numeric
// string and the answer as a number. Absent or empty means Kaleyra's
// documented default, 1.
func oldLaunchType(raw json.RawMessage) (int64, bool) {
	if raw == nil || jsontext.IsNull(raw) {
		return 1, true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw) // a JSON number
	}
	if s == "" {
		return 1, true
	}
	n, err := strconv.ParseInt(s, 10, 32)
	return n, err == nil && n >= 0
}

// oldServeLaunch answers POST /v1/{sid}/rcs/agent/launch. Checks come in the
// order a gateway would make them: method, api-key, content type, JSON,
// account, payload; a valid request then gets its agent's next scripted
// step, a random gateway fault, or success.
func (s *Server) oldServeLaunch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sid := r.PathValue("sid")
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var p payload
	if readErr != nil {
		p.jsonProblem = readProblem(readErr)
	} else {
		p = oldParsePayload(body)
	}

	call := &Call{At: start, SID: sid, AgentNo: p.agentNo}
	if p.validJSON {
		call.Body = json.RawMessage(body)
	}

	s.mu.Lock()
	call.KeyOK = s.keyOKLocked(sid, r)
	st, detail := s.check(r, call.KeyOK, sid, &p)
	if st == "" {
		st = s.nextLocked(sid, p.agentNo)
	}
	if st.issuesLaunchID() {
		p.launchID = oldNewUUID()
		s.issueLocked(p.launchID, p.agentNo)
	}
	call.Code, call.HTTPStatus = string(st), status[st]
	s.recordLocked(call)
	delay := s.delayLocked()
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		call.Duration = time.Since(start)
		s.inFlight--
		s.mu.Unlock()
	}()

	if !s.sleep(r.Context(), delay) {
		return // the client went away; nobody is left to answer
	}
	s.oldAnswer(w, r, st, detail, &p)
}

// oldSuccessBody is Kaleyra's RCS902 answer. Code is a string except for
// StepCodeNotString.
type oldSuccessBody struct {
	Code    any            `json:"code"`
	Message string         `json:"message"`
	Data    oldSuccessData `json:"data"`
	Error   struct{}       `json:"error"`
}

type oldSuccessData struct {
	Launch   oldLaunchEcho   `json:"launch"`
	Regions  []oldRegionEcho `json:"regions"`
	Contacts []struct{}      `json:"contacts"`
}

// oldLaunchEcho is the launch object of a success answer, in the order of
// Kaleyra's sample. Fields are echoed as received; like the sample, it does
// not echo agent_no.
type oldLaunchEcho struct {
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

type oldRegionEcho struct {
	RegionID    json.RawMessage `json:"region_id,omitempty"`
	Region      json.RawMessage `json:"region"`
	EntryPoint  int             `json:"entry_point"`
	LaunchState int             `json:"launch_state"`
	DirtyFlag   string          `json:"dirty_flag"`
}

// oldAnswer writes the answer for step st. detail overrides the failure's
// default error_message; p is the request, for the success echo.
func (s *Server) oldAnswer(w http.ResponseWriter, r *http.Request, st Step, detail string, p *payload) {
	h := w.Header()
	switch st {
	case StepSucceed, StepNoLaunchID, StepCodeNotString:
		writeJSON(w, http.StatusOK, oldSuccess(p, st))
	case StepTruncated:
		b := marshal(oldSuccess(p, st))
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

// oldSuccess builds the RCS902 answer to p, as modified by st, with the
// agent_launch_id serveLaunch issued.
func oldSuccess(p *payload, st Step) oldSuccessBody {
	now := time.Now().UTC().Format(dateLayout)
	l := p.launch
	echo := oldLaunchEcho{
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
	regions := make([]oldRegionEcho, len(p.regions))
	for i, r := range p.regions {
		regions[i] = oldRegionEcho{RegionID: given(r["region_id"]), Region: r["region"], DirtyFlag: "NEW"}
	}
	var code any = string(StepSucceed)
	if st == StepCodeNotString {
		code = 902
	}
	return oldSuccessBody{
		Code:    code,
		Message: "Agent launch request created successfully",
		Data:    oldSuccessData{Launch: echo, Regions: regions, Contacts: []struct{}{}},
	}
}

// oldNewUUID returns a random (version 4) UUID.
func oldNewUUID() string {
	var b [16]byte
	crand.Read(b[:]) // never fails, by crypto/rand's contract
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
