package launch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
	"github.com/rcslaunch/rcslaunch/internal/suggest"
)

// Parse decodes one job from JSON strictly: unknown or repeated fields, wrong
// types, trailing data and text that decoding would repair (invalid UTF-8, a
// lone surrogate escape) are errors, so that a typo such as
// "optin_desription" is reported instead of silently dropped, and the job
// launched is the one written. It then applies defaults and validates. Every
// problem is reported in one *ValidationError: first those of decoding, then
// those of validation, leaving out validation problems of a field that
// already has one (a number where agent_no belongs is reported as such, not
// also as a missing agent_no). Input that is too long, not JSON or not a JSON
// object gets a single problem.
func Parse(data []byte) (Job, error) {
	var j Job
	var p problems
	if len(data) > MaxJobBytes {
		p.add("", "job is %d bytes, more than the %d allowed", len(data), MaxJobBytes)
		return j, p.err()
	}
	if !json.Valid(data) {
		p.add("", "invalid JSON: %s", syntaxProblem(data))
		return j, p.err()
	}
	top, ok := object(&p, "", data)
	if !ok {
		return j, p.err()
	}
	for _, f := range top {
		switch f.name {
		case "id":
			stringField(&p, "id", f.value, &j.ID)
		case "sid":
			stringField(&p, "sid", f.value, &j.SID)
		case "priority":
			stringField(&p, "priority", f.value, (*string)(&j.Priority))
		case "launch":
			parseLaunch(&p, f.value, &j.Launch)
		case "regions":
			parseRegions(&p, f.value, &j.Regions)
		default:
			unknown(&p, "", f.name, "id", "sid", "priority", "launch", "regions")
		}
	}
	if !top.has("launch") {
		p.add("launch", "is required")
	}
	j.ApplyDefaults()
	var v problems
	j.validate(&v)
	for _, fe := range v {
		if !p.covers(fe.Field) {
			p = append(p, fe)
		}
	}
	return j, p.err()
}

// covers reports whether field, or a field containing it, already has a
// problem. Parse uses it to leave out validation problems that only restate
// a decoding problem, such as "is required" for a field that was a number.
func (p problems) covers(field string) bool {
	for _, fe := range p {
		if field == fe.Field ||
			strings.HasPrefix(field, fe.Field+".") ||
			strings.HasPrefix(field, fe.Field+"[") {
			return true
		}
	}
	return false
}

var launchFields = []string{
	"agent_access_instructions", "agent_no", "interactions_description", "launch_name",
	"launch_type", "optin_description", "optout_description", "provider_launch_id",
	"screenshot_uris", "trigger_description", "video_uris",
}

func parseLaunch(p *problems, raw json.RawMessage, l *Launch) {
	fields, ok := object(p, "launch", raw)
	if !ok {
		return
	}
	strs := map[string]*string{
		"agent_access_instructions": &l.AgentAccessInstructions,
		"agent_no":                  &l.AgentNo,
		"interactions_description":  &l.InteractionsDescription,
		"launch_name":               &l.LaunchName,
		"launch_type":               &l.LaunchType,
		"optin_description":         &l.OptinDescription,
		"optout_description":        &l.OptoutDescription,
		"provider_launch_id":        &l.ProviderLaunchID,
		"trigger_description":       &l.TriggerDescription,
	}
	for _, f := range fields {
		path := "launch." + f.name
		switch {
		case strs[f.name] != nil:
			stringField(p, path, f.value, strs[f.name])
		case f.name == "video_uris":
			stringList(p, path, f.value, &l.VideoURIs)
		case f.name == "screenshot_uris":
			stringList(p, path, f.value, &l.ScreenshotURIs)
		default:
			unknown(p, "launch.", f.name, launchFields...)
		}
	}
}

func parseRegions(p *problems, raw json.RawMessage, regions *[]Region) {
	if jsontext.IsNull(raw) {
		return
	}
	items, ok := scanArray(raw)
	if !ok {
		p.add("regions", "must be an array of {\"region_id\", \"region\"} objects")
		return
	}
	*regions = make([]Region, len(items))
	for i, item := range items {
		path := fmt.Sprintf("regions[%d]", i)
		fields, ok := object(p, path, item)
		if !ok {
			continue
		}
		for _, f := range fields {
			switch f.name {
			case "region":
				stringField(p, path+".region", f.value, &(*regions)[i].Region)
			case "region_id":
				stringField(p, path+".region_id", f.value, &(*regions)[i].RegionID)
			default:
				unknown(p, path+".", f.name, "region", "region_id")
			}
		}
	}
}

type member struct {
	name  string
	value json.RawMessage
}

type members []member

func (ms members) has(name string) bool {
	for _, m := range ms {
		if m.name == name {
			return true
		}
	}
	return false
}

// object splits a JSON object into its members in order, reporting a
// non-object and repeated names (which encoding/json would silently resolve
// to the last one). raw is valid JSON: Parse checks the whole job first.
func object(p *problems, path string, raw json.RawMessage) (members, bool) {
	all, ok := scanObject(raw)
	if !ok {
		if path == "" {
			p.add("", "a job must be a JSON object")
		} else {
			p.add(path, "must be a JSON object")
		}
		return nil, false
	}
	ms := all[:0]
	for _, m := range all {
		if ms.has(m.name) {
			p.add(join(path, m.name), "appears more than once")
			continue
		}
		ms = append(ms, m)
	}
	return ms, true
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// stringField decodes a JSON string; null counts as absent.
func stringField(p *problems, path string, raw json.RawMessage, dst *string) {
	if jsontext.IsNull(raw) {
		return
	}
	if raw[0] != '"' {
		p.add(path, "must be a string, got %s", jsonKind(raw))
		return
	}
	*dst = text(p, path, raw)
}

// text decodes the JSON string raw, reporting text that decoding would
// change: encoding/json turns invalid UTF-8 and unpaired surrogate escapes
// into U+FFFD without a word, and the job launched would not be the one
// written. The reason is the one Validate gives for a CSV cell.
func text(p *problems, path string, raw json.RawMessage) string {
	s, _ := jsontext.String(raw)
	if !jsontext.Exact(raw) {
		p.add(path, "%s", reasonUTF8)
	}
	return s
}

// stringList decodes a JSON array of strings; null counts as absent. An
// item that is not a string is reported and kept as "" so that the indices
// of the others, and of their validation problems, stay as in the input.
func stringList(p *problems, path string, raw json.RawMessage, dst *[]string) {
	if jsontext.IsNull(raw) {
		return
	}
	items, ok := scanArray(raw)
	if !ok {
		p.add(path, "must be an array of URL strings, got %s", jsonKind(raw))
		return
	}
	out := make([]string, len(items))
	for i, item := range items {
		if item[0] == '"' {
			out[i] = text(p, fmt.Sprintf("%s[%d]", path, i), item)
		} else {
			p.add(fmt.Sprintf("%s[%d]", path, i), "must be a string, got %s", jsonKind(item))
		}
	}
	*dst = out
}

func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
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

// unknown reports a field name that is not part of the job, suggesting the
// nearest known one when the name looks like a typo of it.
func unknown(p *problems, prefix, name string, known ...string) {
	if best := suggest.Nearest(name, known); best != "" {
		p.add(prefix+name, "unknown field (did you mean %q?)", best)
		return
	}
	p.add(prefix+name, "unknown field")
}

// syntaxProblem describes why data is not valid JSON, with the byte offset.
func syntaxProblem(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, err2 := dec.Token(); err2 != io.EOF {
			return "unexpected data after the job object"
		}
		return "not a single JSON value"
	}
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return "unexpected end of input"
	}
	return err.Error()
}
