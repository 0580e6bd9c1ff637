package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"time"
)

// maxControlBody bounds a control request body.
const maxControlBody = 1 << 20

// scriptRequest is the body of POST /_sim/script: steps for an agent
// (Script) or for an account (ScriptSID), exactly one of the two.
type scriptRequest struct {
	AgentNo string   `json:"agent_no"`
	SID     string   `json:"sid"`
	Steps   []string `json:"steps"`
}

func (s *Server) serveScript(w http.ResponseWriter, r *http.Request) {
	var req scriptRequest
	if err := decodeControl(w, r, &req); err != nil {
		controlError(w, err)
		return
	}
	switch {
	case req.AgentNo == "" && req.SID == "":
		controlError(w, errors.New("agent_no: is required, or sid for an account's calls"))
		return
	case req.AgentNo != "" && req.SID != "":
		controlError(w, errors.New("sid: give agent_no or sid, not both"))
		return
	}
	if len(req.Steps) == 0 {
		controlError(w, errors.New("steps: must list at least one step"))
		return
	}
	steps := make([]Step, len(req.Steps))
	for i, name := range req.Steps {
		steps[i] = Step(name)
		if !steps[i].valid() {
			controlError(w, fmt.Errorf("steps[%d]: unknown step %q (known: %s)", i, name, knownSteps()))
			return
		}
	}
	if req.SID != "" {
		s.ScriptSID(req.SID, steps...)
	} else {
		s.Script(req.AgentNo, steps...)
	}
	w.WriteHeader(http.StatusNoContent)
}

func knownSteps() string {
	names := make([]string, len(scriptable))
	for i, st := range scriptable {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

func (s *Server) serveCalls(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Calls())
}

func (s *Server) serveStatusCalls(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.StatusCalls())
}

func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) serveReset(w http.ResponseWriter, r *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// configRequest is the body of POST /_sim/config; a field left out (or
// null) keeps its current value.
type configRequest struct {
	FaultRate     *float64  `json:"fault_rate"`
	Latency       *string   `json:"latency"`
	Jitter        *string   `json:"jitter"`
	StatusLatency *string   `json:"status_latency"`
	DisabledSIDs  *[]string `json:"disabled_sids"`
	// LaunchStates replaces Config.LaunchStates as a whole.
	LaunchStates        *map[string][]StatusStep `json:"launch_states"`
	DefaultLaunchStates *[]StatusStep            `json:"default_launch_states"`
}

func (s *Server) serveConfig(w http.ResponseWriter, r *http.Request) {
	var req configRequest
	if err := decodeControl(w, r, &req); err != nil {
		controlError(w, err)
		return
	}
	if f := req.FaultRate; f != nil && (math.IsNaN(*f) || *f < 0 || *f > 1) {
		controlError(w, fmt.Errorf("fault_rate: must be between 0 and 1, got %v", *f))
		return
	}
	latency, err := duration("latency", req.Latency)
	if err != nil {
		controlError(w, err)
		return
	}
	jitter, err := duration("jitter", req.Jitter)
	if err != nil {
		controlError(w, err)
		return
	}
	statusLatency, err := duration("status_latency", req.StatusLatency)
	if err != nil {
		controlError(w, err)
		return
	}
	if err := checkSequences(deref(req.LaunchStates), deref(req.DefaultLaunchStates)); err != nil {
		controlError(w, err)
		return
	}
	s.update(func(cfg *Config) {
		if req.FaultRate != nil {
			cfg.FaultRate = *req.FaultRate
		}
		if latency != nil {
			cfg.Latency = *latency
		}
		if jitter != nil {
			cfg.Jitter = *jitter
		}
		if statusLatency != nil {
			cfg.StatusLatency = *statusLatency
		}
		if req.DisabledSIDs != nil {
			cfg.DisabledSIDs = *req.DisabledSIDs
		}
		if req.LaunchStates != nil {
			cfg.LaunchStates = *req.LaunchStates
		}
		if req.DefaultLaunchStates != nil {
			cfg.DefaultLaunchStates = *req.DefaultLaunchStates
		}
	})
	w.WriteHeader(http.StatusNoContent)
}

// deref is *p, or the zero value for nil.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// duration parses an optional duration field such as "150ms".
func duration(field string, s *string) (*time.Duration, error) {
	if s == nil {
		return nil, nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil || d < 0 {
		return nil, fmt.Errorf("%s: must be a non-negative duration such as \"150ms\", got %q", field, *s)
	}
	return &d, nil
}

// decodeControl decodes one JSON object from a control request into v,
// rejecting unknown fields, and describes any problem by field name.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var typeErr *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		if _, err := dec.Token(); err != io.EOF {
			return errors.New("body: unexpected data after the JSON object")
		}
		return nil
	case errors.Is(err, io.EOF):
		return errors.New("body: is empty, expected a JSON object")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return errors.New("body: must be a JSON object")
		}
		return fmt.Errorf("%s: must be %s, got a JSON %s", typeErr.Field, kind(typeErr.Type), typeErr.Value)
	case errors.As(err, &tooBig):
		return fmt.Errorf("body: larger than %d bytes", tooBig.Limit)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("%s: unknown field", strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
	default:
		return fmt.Errorf("body: invalid JSON: %v", err)
	}
}

// kind names a Go type the way a JSON user thinks of it.
func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Float64, reflect.Float32, reflect.Int, reflect.Int64:
		return "a number"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(kind(t.Elem()), "a ") + "s"
	case reflect.Map:
		return "an object whose values are each " + kind(t.Elem())
	default:
		return "a " + t.String()
	}
}

// controlError answers 400 with {"error": "<field>: <problem>"}.
func controlError(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
}
