package sim

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
)

// maxBody is the largest launch request body accepted; a larger one is
// answered RCS701.
const maxBody = 1 << 20

// requiredFields are the launch fields Kaleyra requires, as non-empty strings.
var requiredFields = []string{
	"optin_description", "trigger_description", "interactions_description",
	"optout_description", "agent_access_instructions", "agent_no",
}

// launchFields is how many fields a launch object has when it has all
// those the simulator reads: the required ones, the optional ones it echoes,
// and launch_type.
var launchFields = len(requiredFields) + len(optionalEchoed) + 1

// payload is a launch request body, decoded only as far as the simulator
// needs: it checks what Kaleyra checks and echoes the rest as received.
type payload struct {
	launch  map[string]json.RawMessage
	regions []map[string]json.RawMessage
	// launchType is launch_type as a number, as Kaleyra echoes it.
	launchType int64
	// agentNo is launch.agent_no, when it is a string.
	agentNo string
	// launchID is the agent_launch_id issued to a successful request.
	launchID string
	// validJSON is whether the body is valid JSON, which the simulator
	// records as the call's body even when it is no launch request.
	validJSON bool
	// jsonProblem, when not empty, makes the request an RCS701, and
	// problem an RCS904; both are the error_message answered.
	jsonProblem string
	problem     string
}

// parsePayload decodes body. It is lenient like a generic JSON API: unknown
// fields are ignored and optional ones are not checked.
func parsePayload(body []byte) payload {
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
	// From here on the body is valid JSON, which the decoders of scan.go
	// take apart as json.Unmarshal would, and jsontext.String decodes a
	// string field as Unmarshal into a string does. Unmarshal also takes
	// null into a string, as "", which the checks below refuse either way.
	if jsontext.Kind(body) != '{' {
		p.jsonProblem = "request body must be a JSON object"
		return p
	}
	var launch, regions json.RawMessage
	for name, value := range jsontext.Members(body) {
		switch memberName(name) {
		case "launch":
			launch = value
		case "regions":
			regions = value
		}
	}
	if p.launch = decodeObject(launch, launchFields); p.launch == nil {
		p.problem = provError(missingFields)
		return p
	}
	p.agentNo, _ = jsontext.String(p.launch["agent_no"])
	for _, name := range requiredFields {
		if s, ok := jsontext.String(p.launch[name]); !ok || strings.TrimSpace(s) == "" {
			p.problem = provError(missingFields)
			return p
		}
	}
	lt, ok := launchType(p.launch["launch_type"])
	if !ok {
		p.problem = provError("Invalid launch_type in launch payload")
		return p
	}
	p.launchType = lt
	if regions != nil && !jsontext.IsNull(regions) {
		if p.regions, ok = decodeObjects(regions); !ok {
			p.problem = provError("Invalid regions in launch payload")
			return p
		}
		for _, r := range p.regions {
			if s, ok := jsontext.String(r["region"]); !ok || strings.TrimSpace(s) == "" {
				p.problem = provError(missingFields)
				return p
			}
		}
	}
	return p
}

// launchType reads launch_type, which the request carries as a numeric
// string and the answer as a number. Absent or empty means Kaleyra's
// documented default, 1.
func launchType(raw json.RawMessage) (int64, bool) {
	if raw == nil || jsontext.IsNull(raw) {
		return 1, true
	}
	s, ok := jsontext.String(raw)
	if !ok {
		s = string(raw) // a JSON number
	}
	if s == "" {
		return 1, true
	}
	n, err := strconv.ParseInt(s, 10, 32)
	return n, err == nil && n >= 0
}

// serveLaunch answers POST /v1/{sid}/rcs/agent/launch. Checks come in the
// order a gateway would make them: method, api-key, content type, JSON,
// account, payload; a valid request then gets its agent's next scripted
// step, a random gateway fault, or success.
func (s *Server) serveLaunch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sid := r.PathValue("sid")
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var p payload
	if readErr != nil {
		p.jsonProblem = readProblem(readErr)
	} else {
		p = parsePayload(body)
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
		p.launchID = newUUID()
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
	s.answer(w, r, st, detail, &p)
}

// issuesLaunchID reports whether answering st creates a launch request,
// whose agent_launch_id the status route then knows.
func (st Step) issuesLaunchID() bool {
	return st == StepSucceed || st == StepCodeNotString || st == StepTruncated
}

// check applies the request checks, returning the failure to answer, with
// its error_message when it differs from the code's default, or "" for a
// valid request; keyOK is whether the request carried its account's
// api-key. s.mu must be held.
func (s *Server) check(r *http.Request, keyOK bool, sid string, p *payload) (Step, string) {
	if r.Method != http.MethodPost {
		return stepMethod, ""
	}
	if !keyOK {
		return stepUnauthorized, ""
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		return StepInvalidJSON, fmt.Sprintf("Content-Type must be application/json, got %q", ct)
	}
	if p.jsonProblem != "" {
		return StepInvalidJSON, p.jsonProblem
	}
	if s.disabled[sid] {
		return StepDisabled, ""
	}
	if p.problem != "" {
		return StepMissingFields, p.problem
	}
	return "", ""
}

// keyOKLocked reports whether r carries the api-key of account sid:
// Config.Keys[sid] when listed, else Config.APIKey. s.mu must be held.
func (s *Server) keyOKLocked(sid string, r *http.Request) bool {
	want, ok := s.cfg.Keys[sid]
	if !ok {
		want = s.cfg.APIKey
	}
	return keyOK(want, r.Header.Get("api-key"))
}

// keyOK reports whether the api-key header got is acceptable. Both keys are
// hashed first so that the comparison takes the same time whatever their
// lengths and contents.
func keyOK(want, got string) bool {
	if got == "" {
		return false
	}
	if want == "" {
		return true
	}
	w, g := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(w[:], g[:]) == 1
}

// isJSON reports whether a Content-Type header names JSON, in any case and
// with any parameters.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

func readProblem(err error) string {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit)
	}
	return "reading request body: " + err.Error()
}

// nextLocked picks the answer to a valid request: the agent's next scripted
// step, else the account's, else a gateway fault with probability
// FaultRate, else success. s.mu must be held.
func (s *Server) nextLocked(sid, agentNo string) Step {
	if st, ok := pop(s.scripts, agentNo); ok {
		return st
	}
	if st, ok := pop(s.sidScripts, sid); ok {
		return st
	}
	if s.cfg.FaultRate > 0 && s.rng.Float64() < s.cfg.FaultRate {
		return StepGateway
	}
	return StepSucceed
}

// pop takes the first step queued for key in scripts, if any.
func pop(scripts map[string][]Step, key string) (Step, bool) {
	q := scripts[key]
	switch len(q) {
	case 0:
		return "", false
	case 1:
		delete(scripts, key)
	default:
		scripts[key] = q[1:]
	}
	return q[0], true
}

// recordLocked adds a call to the history and the totals and counts it in
// flight. s.mu must be held.
func (s *Server) recordLocked(c *Call) {
	s.calls = logCall(s.calls, c)
	s.ncalls++
	s.byCode[c.Code]++
	if c.AgentNo != "" {
		s.byAgent[c.AgentNo]++
	}
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
}

// delayLocked is the latency of one answer. s.mu must be held.
func (s *Server) delayLocked() time.Duration {
	d := s.cfg.Latency
	if s.cfg.Jitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(s.cfg.Jitter) + 1))
	}
	return d
}

// sleep waits d, cut short by server shutdown. It reports false if the
// client went away first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return true
	case <-ctx.Done():
		return false
	}
}
