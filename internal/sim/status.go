package sim

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// StatusStep is one answer of the launch status route, in a sequence that a
// launch goes through (see Config.LaunchStates): a launch state, or a bad
// answer that a client must survive.
type StatusStep string

// The steps of a launch status sequence. The states are answered HTTP 200
// with data.launch_status in Google RBM's upper-case style ("PENDING",
// "LAUNCHED", ...; StatusUnknown as "LAUNCH_STATE_UNSPECIFIED").
const (
	StatusPending   StatusStep = "pending"
	StatusLaunched  StatusStep = "launched"
	StatusRejected  StatusStep = "rejected"
	StatusSuspended StatusStep = "suspended"
	StatusUnknown   StatusStep = "unknown"
	StatusHTML      StatusStep = StatusStep(StepHTML)     // HTTP 502 with a proxy's HTML page
	StatusThrottle  StatusStep = StatusStep(StepThrottle) // HTTP 429
	StatusGateway   StatusStep = StatusStep(StepGateway)  // RCS502, HTTP 500
)

// Answers of the status route that cannot be scripted.
const (
	statusUnauthorized = StatusStep(stepUnauthorized) // missing or wrong api-key
	statusMethod       = StatusStep(stepMethod)       // a method other than GET
	statusNotFound     = StatusStep(stepNotFound)     // an agent_launch_id this simulator never issued for that agent
	statusBadQuery     = StatusStep(stepBadQuery)     // agent_number or agent_launch_id missing
)

// wireStates is how each state is written in data.launch_status.
var wireStates = map[StatusStep]string{
	StatusPending:   "PENDING",
	StatusLaunched:  "LAUNCHED",
	StatusRejected:  "REJECTED",
	StatusSuspended: "SUSPENDED",
	StatusUnknown:   "LAUNCH_STATE_UNSPECIFIED",
}

// statusSteps lists the scriptable status steps in documentation order.
var statusSteps = []StatusStep{
	StatusPending, StatusLaunched, StatusRejected, StatusSuspended, StatusUnknown,
	StatusHTML, StatusThrottle, StatusGateway,
}

// The built-in sequences, used when Config.DefaultLaunchStates is empty:
// agents whose number ends in 9 are rejected after one pending answer, the
// others launched after two.
var (
	builtinRejected = []StatusStep{StatusPending, StatusRejected}
	builtinLaunched = []StatusStep{StatusPending, StatusPending, StatusLaunched}
)

// maxLaunches bounds the launches remembered for the status route; beyond
// it the oldest are forgotten and answered 404 like unknown ones.
const maxLaunches = 200_000

// issued is a launch request the simulator created: whose it is and how
// many status calls it has answered.
type issued struct {
	agentNo string
	polls   int
}

// statusBody is the answer of a status call with a state. Kaleyra does not
// publish this answer; the simulator answers in the style of its launch
// answer, with a code of its own choosing, RCS200.
type statusBody struct {
	Code    string     `json:"code"`
	Message string     `json:"message"`
	Data    statusData `json:"data"`
	Error   struct{}   `json:"error"`
}

type statusData struct {
	AgentNumber   string `json:"agent_number"`
	AgentLaunchID string `json:"agent_launch_id"`
	LaunchStatus  string `json:"launch_status"`
	ModifiedDate  string `json:"modified_date"`
}

// checkSequences reports the first unknown step or empty sequence of the
// status scripts, naming it as the control route's fields do.
func checkSequences(byPrefix map[string][]StatusStep, fallback []StatusStep) error {
	for prefix, seq := range byPrefix {
		if len(seq) == 0 {
			return fmt.Errorf("launch_states[%q]: must list at least one step", prefix)
		}
		if err := checkSteps(fmt.Sprintf("launch_states[%q]", prefix), seq); err != nil {
			return err
		}
	}
	return checkSteps("default_launch_states", fallback)
}

func checkSteps(field string, seq []StatusStep) error {
	for i, st := range seq {
		if !st.valid() {
			return fmt.Errorf("%s[%d]: unknown step %q (known: %s)", field, i, st, knownStatusSteps())
		}
	}
	return nil
}

func (st StatusStep) valid() bool {
	for _, known := range statusSteps {
		if st == known {
			return true
		}
	}
	return false
}

func knownStatusSteps() string {
	names := make([]string, len(statusSteps))
	for i, st := range statusSteps {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

// issueLocked remembers a launch request created for agentNo, forgetting
// the oldest beyond maxLaunches. s.mu must be held.
func (s *Server) issueLocked(id, agentNo string) {
	if len(s.launchOrder) == maxLaunches {
		delete(s.launches, s.launchOrder[0])
		s.launchOrder = s.launchOrder[1:]
	}
	s.launchOrder = append(s.launchOrder, id)
	s.launches[id] = &issued{agentNo: agentNo}
}

// serveStatus answers GET /v1/{sid}/rcs/agent/agentlaunchstatus with the
// next step of the launch's sequence, after the method, api-key and query
// checks; a launch this simulator did not issue for that agent is 404. The
// step is taken when the call arrives, before StatusLatency: a call whose
// client leaves meanwhile has still moved its launch on, as a real server
// that answered into a dropped connection would have.
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	q := r.URL.Query()
	agentNo, id := q.Get("agent_number"), q.Get("agent_launch_id")
	sid := r.PathValue("sid")
	s.mu.Lock()
	keyOK := s.keyOKLocked(sid, r)
	st, poll, detail := s.statusStepLocked(r, keyOK, agentNo, id)
	call := &StatusCall{At: start, SID: sid, AgentNo: agentNo, AgentLaunchID: id, KeyOK: keyOK,
		Poll: poll, Answer: string(st), HTTPStatus: st.httpStatus()}
	s.recordStatusLocked(call)
	delay := s.cfg.StatusLatency
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		call.Duration = time.Since(start)
		s.mu.Unlock()
	}()
	if !s.sleep(r.Context(), delay) {
		return // the client went away; nobody is left to answer
	}

	switch st {
	case StatusHTML, StatusThrottle, StatusGateway:
		s.answer(w, r, Step(st), "", nil)
	case statusMethod:
		w.Header().Set("Allow", http.MethodGet)
		writeFailure(w, stepMethod, "")
	case statusUnauthorized, statusNotFound, statusBadQuery:
		writeFailure(w, Step(st), detail)
	default:
		writeJSON(w, http.StatusOK, statusBody{
			Code:    "RCS200",
			Message: "Agent launch status fetched successfully",
			Data: statusData{
				AgentNumber:   agentNo,
				AgentLaunchID: id,
				LaunchStatus:  wireStates[st],
				ModifiedDate:  time.Now().UTC().Format(dateLayout),
			},
		})
	}
}

// httpStatus is the HTTP status answering st: 200 for a state.
func (st StatusStep) httpStatus() int {
	if _, ok := wireStates[st]; ok {
		return http.StatusOK
	}
	return status[Step(st)]
}

// recordStatusLocked adds a status call to the history and the totals,
// forgetting the oldest beyond maxCalls. s.mu must be held.
func (s *Server) recordStatusLocked(c *StatusCall) {
	s.statusLog = logCall(s.statusLog, c)
	s.statusCalls++
	s.statusByAnswer[c.Answer]++
	if c.AgentNo != "" {
		s.statusByAgent[c.AgentNo]++
	}
}

// statusStepLocked picks the answer to one status call and advances the
// launch's sequence; poll is which status call of the launch it is, from 1
// (0 for a call refused or naming no launch); keyOK is whether the call
// carried its account's api-key. s.mu must be held.
func (s *Server) statusStepLocked(r *http.Request, keyOK bool, agentNo, id string) (st StatusStep, poll int, detail string) {
	if r.Method != http.MethodGet {
		return statusMethod, 0, ""
	}
	if !keyOK {
		return statusUnauthorized, 0, ""
	}
	if agentNo == "" || id == "" {
		return statusBadQuery, 0, "agent_number and agent_launch_id are required query parameters"
	}
	l := s.launches[id]
	if l == nil || l.agentNo != agentNo {
		return statusNotFound, 0, fmt.Sprintf("no agent launch %q for agent %q", id, agentNo)
	}
	seq := s.sequenceLocked(agentNo)
	st = seq[min(l.polls, len(seq)-1)]
	l.polls++
	return st, l.polls, ""
}

// sequenceLocked is the status sequence of agentNo: the longest matching
// prefix's in LaunchStates, else DefaultLaunchStates, else the built-in
// one. s.mu must be held.
func (s *Server) sequenceLocked(agentNo string) []StatusStep {
	best, found := "", false
	for prefix := range s.cfg.LaunchStates {
		if strings.HasPrefix(agentNo, prefix) && (!found || len(prefix) > len(best)) {
			best, found = prefix, true
		}
	}
	switch {
	case found:
		return s.cfg.LaunchStates[best]
	case len(s.cfg.DefaultLaunchStates) > 0:
		return s.cfg.DefaultLaunchStates
	case strings.HasSuffix(agentNo, "9"):
		return builtinRejected
	default:
		return builtinLaunched
	}
}
