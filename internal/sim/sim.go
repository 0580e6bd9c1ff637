// Package sim is a simulator of Kaleyra's RCS "launch an agent" API.
//
// It serves POST /v1/{sid}/rcs/agent/launch the way Kaleyra documents it
// (request checks, the RCS902 success echo, the RCS904, RCS701, RCS601, RCS405
// and RCS502 failure bodies with their HTTP statuses) and adds what a test
// needs to reproduce trouble on demand: latency and jitter, a random gateway
// fault rate, disabled SIDs, a key per account (so that a call sent with
// another account's key shows), and per-agent or per-account scripts of
// answers that Kaleyra gives only on a bad day (HTTP 429, hangs, empty,
// HTML, truncated or huge bodies, malformed codes).
//
// It also serves GET /v1/{sid}/rcs/agent/agentlaunchstatus for the launches
// it created, answering each status call with the next step of a scripted
// sequence chosen by agent-number prefix (see Config.LaunchStates).
//
// A *Server is an http.Handler, so tests mount it on net/http/httptest and
// script it through its methods; `rcslaunch sim` runs it with ListenAndServe
// and other processes script it through the control routes under /_sim/ (see
// Server). It keeps everything in memory and is safe for concurrent use.
//
// Where Kaleyra documents nothing, the simulator chooses, in Kaleyra's
// style: a missing or wrong api-key is HTTP 401 with code "RCS401"; a
// Content-Type other than application/json, and a body over 1 MiB, are
// RCS701; a launch_type that is not a whole number is RCS904 with its own
// message; dates are written in UTC. The api-key itself is never recorded
// or logged.
package sim

import (
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Config is what the simulator checks and how it misbehaves.
type Config struct {
	// APIKey is the api-key header every launch call must carry. Empty
	// accepts any non-empty key.
	APIKey string
	// Keys are the api-keys of particular accounts, by SID: a call for an
	// SID listed here must carry that key instead of APIKey, so that a call
	// sent with another account's key is refused (RCS401) and shows as such
	// in Call.KeyOK. An empty key accepts any non-empty one.
	Keys map[string]string
	// Latency is added before every answer on the launch route.
	Latency time.Duration
	// StatusLatency is added before every answer on the launch status
	// route, so that a test can catch a status call in flight.
	StatusLatency time.Duration
	// Jitter adds a uniform random 0..Jitter on top of Latency.
	Jitter time.Duration
	// FaultRate is the probability, 0..1, of answering RCS502 (HTTP 500) to
	// a valid, unscripted request. Values outside 0..1 are clamped.
	FaultRate float64
	// DisabledSIDs are accounts answered RCS601 (RCS channel not enabled).
	DisabledSIDs []string
	// Seed seeds the random source of faults and jitter, so that a test can
	// replay the same sequence; 0 picks a random seed.
	Seed int64
	// LaunchStates scripts the launch status route: a launch of an agent
	// whose number starts with a key gets that key's steps, one per status
	// call for its agent_launch_id, staying on the last. The longest
	// matching prefix wins. Sequences must not be empty.
	LaunchStates map[string][]StatusStep
	// DefaultLaunchStates is the sequence of agents that no prefix of
	// LaunchStates matches. Empty means the built-in one: pending then
	// rejected for agent numbers ending in 9, pending, pending, launched
	// for the others.
	DefaultLaunchStates []StatusStep
}

// Call is one request received on the launch route.
type Call struct {
	// At is when the request arrived.
	At time.Time `json:"at"`
	// SID is the account SID from the path.
	SID string `json:"sid"`
	// AgentNo is launch.agent_no from the body, when the body has one.
	AgentNo string `json:"agent_no,omitempty"`
	// Code is the Kaleyra code answered ("RCS902", "RCS502", ..., and
	// "RCS401" for a bad api-key), or, for a scripted answer that carries no
	// valid Kaleyra code, the Step's name ("HTTP429", "HANG", "TRUNCATED"...).
	// It is chosen when the call arrives, so it is set even for a call whose
	// client left before the answer was sent.
	Code string `json:"code"`
	// HTTPStatus is the status answered; 0 for a HANG, which never answers.
	HTTPStatus int `json:"http_status"`
	// Body is the request body as received, when it is valid JSON. Headers,
	// and so the api-key, are never recorded.
	Body json.RawMessage `json:"body,omitempty"`
	// KeyOK is whether the call carried its account's api-key (Config.Keys
	// for its SID, else Config.APIKey): what a test checks to tell that no
	// call went out with another account's key, which itself is never
	// recorded. A call without it is answered RCS401 (unless its method was
	// refused first).
	KeyOK bool `json:"key_ok"`
	// Duration is how long the answer took, latency included; 0 while the
	// call is still in flight.
	Duration time.Duration `json:"duration_ns"`
}

// StatusCall is one request received on the launch status route.
type StatusCall struct {
	// At is when the request arrived.
	At time.Time `json:"at"`
	// SID is the account SID from the path.
	SID string `json:"sid"`
	// AgentNo and AgentLaunchID are the agent_number and agent_launch_id
	// query parameters.
	AgentNo       string `json:"agent_no,omitempty"`
	AgentLaunchID string `json:"agent_launch_id,omitempty"`
	// KeyOK is whether the call carried its account's api-key, as
	// Call.KeyOK.
	KeyOK bool `json:"key_ok"`
	// Poll is which status call of the launch this is, from 1: the step of
	// its sequence answered is Poll-1 (or the last). 0 when the call named
	// no launch this simulator issued to that agent, or was refused first.
	Poll int `json:"poll,omitempty"`
	// Answer is the StatusStep answered, or "RCS401", "RCS404", "RCS400",
	// "RCS405" (as in Stats.StatusByAnswer). It is chosen when the call
	// arrives, so it is set even for a call whose client left before the
	// answer was sent.
	Answer string `json:"answer"`
	// HTTPStatus is the status answered.
	HTTPStatus int `json:"http_status"`
	// Duration is how long the answer took, StatusLatency included; 0 while
	// the call is still in flight.
	Duration time.Duration `json:"duration_ns"`
}

// Stats are totals over the calls received since New or the last Reset.
type Stats struct {
	// Calls is the number of launch calls received.
	Calls int `json:"calls"`
	// ByCode counts calls by Call.Code.
	ByCode map[string]int `json:"by_code"`
	// ByAgent counts calls by agent_no (calls without one are not counted).
	ByAgent map[string]int `json:"by_agent"`
	// InFlight is the number of launch calls being answered right now, and
	// MaxInFlight the most there were at once.
	InFlight    int `json:"in_flight"`
	MaxInFlight int `json:"max_in_flight"`
	// StatusCalls is the number of calls on the launch status route, whatever
	// their answer; StatusByAgent counts them by agent_number and
	// StatusByAnswer by answer (a StatusStep, or "RCS401", "RCS404",
	// "RCS400", "RCS405"). They are left out of the JSON while zero.
	StatusCalls    int            `json:"status_calls,omitempty"`
	StatusByAgent  map[string]int `json:"status_by_agent,omitempty"`
	StatusByAnswer map[string]int `json:"status_by_answer,omitempty"`
}

// maxCalls bounds the call history so that a long-running simulator does not
// grow without limit; beyond it the oldest calls are forgotten (Stats still
// count them).
const maxCalls = 100_000

// logCall appends c to a call history, forgetting the oldest beyond
// maxCalls.
func logCall[C any](log []*C, c *C) []*C {
	if len(log) == maxCalls {
		log[0] = nil
		log = log[1:]
	}
	return append(log, c)
}

// copyLog returns a copy of a call history, for a caller outside s.mu.
func copyLog[C any](log []*C) []C {
	out := make([]C, len(log))
	for i, c := range log {
		out[i] = *c
	}
	return out
}

// Server is the simulator. Besides the launch route it serves control routes
// that let another process script it. They need no api-key, because the
// simulator is meant for loopback use only:
//
//	POST /_sim/script  {"agent_no": "48900", "steps": ["RCS502", "RCS502"]}  see Script
//	POST /_sim/script  {"sid": "HX12", "steps": ["HTTP429"]}                  see ScriptSID
//	GET  /_sim/calls   JSON array of Call                                   see Calls
//	GET  /_sim/status_calls  JSON array of StatusCall                       see StatusCalls
//	GET  /_sim/stats   Stats as JSON                                        see Stats
//	POST /_sim/reset                                                        see Reset
//	POST /_sim/config  {"fault_rate": 0.5, "latency": "150ms", "jitter": "0s", "status_latency": "0s", "disabled_sids": ["X"],
//	                    "launch_states": {"4890": ["pending", "launched"]}, "default_launch_states": ["pending"]}
//
// /_sim/config changes only the fields given. A bad body is answered 400
// with a message naming the field; success is 204 No Content.
type Server struct {
	mux *http.ServeMux
	// stop is closed when ListenAndServe shuts down, releasing hung calls.
	stop     chan struct{}
	stopOnce sync.Once

	mu          sync.Mutex
	cfg         Config
	disabled    map[string]bool
	rng         *rand.Rand
	scripts     map[string][]Step // by agent number
	sidScripts  map[string][]Step // by SID
	calls       []*Call
	ncalls      int
	byCode      map[string]int
	byAgent     map[string]int
	inFlight    int
	maxInFlight int

	// launches are the launch requests created, by agent_launch_id, and
	// launchOrder their IDs oldest first, for forgetting beyond maxLaunches.
	launches       map[string]*issued
	launchOrder    []string
	statusLog      []*StatusCall
	statusCalls    int
	statusByAgent  map[string]int
	statusByAnswer map[string]int
}

// New returns a simulator with the given configuration.
func New(cfg Config) *Server {
	s := &Server{mux: http.NewServeMux(), stop: make(chan struct{}), launches: map[string]*issued{}}
	s.Reset()
	s.SetConfig(cfg)
	s.mux.HandleFunc("/v1/{sid}/rcs/agent/launch", s.serveLaunch)
	s.mux.HandleFunc("/v1/{sid}/rcs/agent/agentlaunchstatus", s.serveStatus)
	s.mux.HandleFunc("POST /_sim/script", s.serveScript)
	s.mux.HandleFunc("GET /_sim/calls", s.serveCalls)
	s.mux.HandleFunc("GET /_sim/status_calls", s.serveStatusCalls)
	s.mux.HandleFunc("GET /_sim/stats", s.serveStats)
	s.mux.HandleFunc("POST /_sim/reset", s.serveReset)
	s.mux.HandleFunc("POST /_sim/config", s.serveConfig)
	return s
}

// ServeHTTP serves the launch route and the control routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// SetConfig replaces the configuration at run time; calls already sleeping
// keep the latency they started with. The random source is reseeded only
// when Seed is non-zero and differs from the current one, so that flipping
// FaultRate does not restart a seeded sequence. It panics on an unknown
// StatusStep or an empty sequence, as that is a mistake in the caller.
func (s *Server) SetConfig(cfg Config) {
	if err := checkSequences(cfg.LaunchStates, cfg.DefaultLaunchStates); err != nil {
		panic("sim: " + err.Error())
	}
	s.update(func(c *Config) { *c = cfg })
}

// update changes the configuration with change, atomically, then normalizes
// it: fault rate clamped to 0..1, negative durations made 0.
func (s *Server) update(change func(*Config)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg
	change(&cfg)
	if math.IsNaN(cfg.FaultRate) {
		cfg.FaultRate = 0
	}
	cfg.FaultRate = min(max(cfg.FaultRate, 0), 1)
	cfg.Latency = max(cfg.Latency, 0)
	cfg.StatusLatency = max(cfg.StatusLatency, 0)
	cfg.Jitter = max(cfg.Jitter, 0)
	cfg.DisabledSIDs = slices.Clone(cfg.DisabledSIDs)
	cfg.Keys = maps.Clone(cfg.Keys)
	cfg.LaunchStates = maps.Clone(cfg.LaunchStates)
	for prefix, seq := range cfg.LaunchStates {
		cfg.LaunchStates[prefix] = slices.Clone(seq)
	}
	cfg.DefaultLaunchStates = slices.Clone(cfg.DefaultLaunchStates)
	s.disabled = make(map[string]bool, len(cfg.DisabledSIDs))
	for _, sid := range cfg.DisabledSIDs {
		s.disabled[sid] = true
	}
	if s.rng == nil || (cfg.Seed != 0 && cfg.Seed != s.cfg.Seed) {
		seed := uint64(cfg.Seed)
		if seed == 0 {
			seed = rand.Uint64()
		}
		s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	}
	s.cfg = cfg
}

// Script queues answers for agentNo: its next valid launch calls get steps
// in order, after any steps already queued for it, whatever the fault rate;
// then normal behaviour resumes. Request checks (api-key, content type,
// JSON, disabled SID, required fields) still come first, and a call they
// reject does not use a step. Script panics on an unknown Step, as that is a
// mistake in the calling test.
func (s *Server) Script(agentNo string, steps ...Step) {
	s.script(&s.scripts, agentNo, steps)
}

// ScriptSID is Script for an account: the next valid launch calls for sid,
// whatever their agent, get steps in order, so that a test can make one
// account's gateway fail or throttle without knowing which of its jobs a
// worker sends first. A call whose agent has steps of its own (Script)
// takes its agent's step and leaves the account's for the next call.
func (s *Server) ScriptSID(sid string, steps ...Step) {
	s.script(&s.sidScripts, sid, steps)
}

// script appends steps to the queue of key in *scripts (s.scripts or
// s.sidScripts, read under s.mu as Reset replaces them), after checking
// them.
func (s *Server) script(scripts *map[string][]Step, key string, steps []Step) {
	for _, st := range steps {
		if !st.valid() {
			panic("sim: unknown step " + string(st))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	(*scripts)[key] = append((*scripts)[key], steps...)
}

// Calls returns every launch call received since New or the last Reset, in
// order of arrival (at most the latest 100,000).
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyLog(s.calls)
}

// StatusCalls returns every launch status call received since New or the
// last Reset, in order of arrival (at most the latest 100,000). Calls
// returns the launch calls only.
func (s *Server) StatusCalls() []StatusCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyLog(s.statusLog)
}

// Stats returns the totals since New or the last Reset.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Calls:       s.ncalls,
		ByCode:      maps.Clone(s.byCode),
		ByAgent:     maps.Clone(s.byAgent),
		InFlight:    s.inFlight,
		MaxInFlight: s.maxInFlight,

		StatusCalls:    s.statusCalls,
		StatusByAgent:  maps.Clone(s.statusByAgent),
		StatusByAnswer: maps.Clone(s.statusByAnswer),
	}
}

// Reset forgets calls, stats and scripts; the configuration stays. Calls in
// flight still count in InFlight, and MaxInFlight restarts from there. The
// launches created so far stay too, each where it is in its status
// sequence: they are Kaleyra's records, not the test's history.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts = map[string][]Step{}
	s.sidScripts = map[string][]Step{}
	s.calls = nil
	s.ncalls = 0
	s.byCode = map[string]int{}
	s.byAgent = map[string]int{}
	s.maxInFlight = s.inFlight
	s.statusLog = nil
	s.statusCalls = 0
	s.statusByAgent = map[string]int{}
	s.statusByAnswer = map[string]int{}
}

// shutdown releases every hung or sleeping call; ListenAndServe calls it so
// that a graceful shutdown does not wait for clients that never give up.
func (s *Server) shutdown() {
	s.stopOnce.Do(func() { close(s.stop) })
}
