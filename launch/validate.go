package launch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/baseurl"
)

// Bounds on a job's size. They keep one bad row from filling Redis and sit
// well above anything a real launch questionnaire needs.
const (
	MaxJobBytes   = 64 << 10 // one encoded job (a JSONL line, an HTTP body)
	MaxIDLen      = 128      // an idempotency key
	MaxTextLen    = 2000     // a description or other free-text field, in characters
	MaxURILen     = 2048     // one video or screenshot URI
	MaxURIs       = 20       // per URI list
	MaxRegions    = 50       // per job
	maxLaunchType = 4        // digits
)

// FieldError is one problem with one field of a job.
type FieldError struct {
	// Field is the path of the field, such as "launch.video_uris[1]" or
	// "regions[0].region_id"; empty for the job as a whole.
	Field string `json:"field"`
	// Reason says what is wrong, in words an operator can act on.
	Reason string `json:"reason"`
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// ValidationError lists every problem found in a job, so that a user fixes a
// row once rather than once per problem.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Error()
	}
	return "invalid job: " + strings.Join(parts, "; ")
}

// problems collects field errors; its zero value is ready to use.
type problems []FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Errors: p}
}

// ValidateID checks an idempotency key. IDs become part of Redis keys and
// command lines, so they are kept to a plain, printable alphabet.
func ValidateID(id string) error {
	var p problems
	checkID(&p, id)
	return p.err()
}

func checkID(p *problems, id string) {
	switch {
	case len(id) > MaxIDLen:
		p.add("id", "must be at most %d characters, got %d", MaxIDLen, len(id))
	case !isID(id):
		p.add("id", "must start with a letter or digit and contain only letters, digits and . _ : @ -")
	}
}

// isID reports whether id matches ^[A-Za-z0-9][A-Za-z0-9._:@-]*$, byte by
// byte: package regexp takes a microsecond to match a derived ID, and the
// worker validates every job it runs, each with an ID.
func isID(id string) bool {
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '@' || c == '-'):
		default:
			return false
		}
	}
	return id != ""
}

// isUUID reports whether s matches
// ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$,
// byte by byte for the same reason as isID.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// Validate reports every problem with the job (after defaults are applied)
// as a *ValidationError, or nil when Kaleyra can be sent the job.
//
// Text must be valid UTF-8 without control characters (C0, DEL and C1, as
// unicode.IsControl): they would reach terminals, logs and spreadsheets with
// the job, where an escape sequence can rewrite what an operator sees. The
// five free-text descriptions (optin, trigger, interactions, optout and
// agent_access_instructions) alone may hold line breaks (\n) and tabs, since
// Kaleyra's questionnaire answers can be paragraphs; even there a carriage
// return is refused (a CSV cell's \r\n already reads as \n). agent_no,
// launch_name, provider_launch_id, regions, URIs and IDs refuse every control
// character.
func (j Job) Validate() error {
	var p problems
	j.ApplyDefaults()
	j.validate(&p)
	return p.err()
}

// validate adds the problems of j, whose defaults are applied, to p. It
// takes a pointer so that the job is not copied again: Validate passes its
// own copy, Parse the job it returns.
func (j *Job) validate(p *problems) {
	if j.ID != "" {
		checkID(p, j.ID)
	}
	if j.SID != "" {
		if err := baseurl.CheckSID(j.SID); err != nil {
			p.add("sid", "%v", err)
		}
	}
	if j.Priority != "" && !slices.Contains(Priorities, j.Priority) {
		p.add("priority", "must be high, default or low (or left out for the producer's), got %q", truncate(string(j.Priority), 20))
	}
	l := &j.Launch
	// Field paths are constants, not built, so that a valid job costs no
	// allocation for them.
	checkText(p, "launch.optin_description", l.OptinDescription, required|multiline)
	checkText(p, "launch.trigger_description", l.TriggerDescription, required|multiline)
	checkText(p, "launch.interactions_description", l.InteractionsDescription, required|multiline)
	checkText(p, "launch.optout_description", l.OptoutDescription, required|multiline)
	checkText(p, "launch.agent_access_instructions", l.AgentAccessInstructions, required|multiline)
	checkText(p, "launch.agent_no", l.AgentNo, required)
	checkText(p, "launch.provider_launch_id", l.ProviderLaunchID, 0)
	checkText(p, "launch.launch_name", l.LaunchName, 0)
	if len(l.LaunchType) > maxLaunchType || !isDigits(l.LaunchType) {
		p.add("launch.launch_type", "must be a numeric string such as %q, got %q", DefaultLaunchType, truncate(l.LaunchType, 20))
	}
	checkURIs(p, "launch.video_uris", l.VideoURIs)
	checkURIs(p, "launch.screenshot_uris", l.ScreenshotURIs)
	if len(j.Regions) > MaxRegions {
		p.add("regions", "must have at most %d entries, got %d", MaxRegions, len(j.Regions))
	}
	for i, r := range j.Regions {
		// As for the launch fields, a path is only built for a problem.
		if reason := textProblem(r.Region, required); reason != "" {
			p.add(fmt.Sprintf("regions[%d].region", i), "%s", reason)
		}
		if r.RegionID != "" && !isUUID(r.RegionID) {
			p.add(fmt.Sprintf("regions[%d].region_id", i), "must be a UUID such as 8346a250-d7a9-47dc-8202-a8b1c2d3e4e8, got %q", truncate(r.RegionID, 60))
		}
	}
	if n, ok := encodedLen(j); !ok {
		p.add("", "job is %d bytes as JSON, more than the %d allowed", n, MaxJobBytes)
	}
}

// encodedLen checks that the job, written as one JSON line with its ID and
// without HTML escaping, fits in MaxJobBytes, so that every valid job can be
// sent, stored and exported as JSONL and read back. The per-field bounds
// alone do not ensure it: JSON escaping can make a string up to six times
// longer, and a CSV row has no JSON overhead to count against the limit. The
// job is only encoded when a cheap upper bound on its length is too big; n is
// the exact length when ok is false.
func encodedLen(j *Job) (n int, ok bool) {
	const (
		fixed     = 1024 // braces, key names, quotes and commas of one job
		perRegion = 64   // the same for one region
		perURI    = 4    // quotes and a comma
		escape    = 6    // the longest JSON escape of one byte, \u00XX
	)
	l := &j.Launch
	bound := fixed + escape*(len(j.ID)+len(l.AgentAccessInstructions)+len(l.AgentNo)+
		len(l.InteractionsDescription)+len(l.LaunchName)+len(l.LaunchType)+
		len(l.OptinDescription)+len(l.OptoutDescription)+len(l.ProviderLaunchID)+
		len(l.TriggerDescription))
	for _, list := range [][]string{l.VideoURIs, l.ScreenshotURIs} {
		for _, u := range list {
			bound += perURI + escape*len(u)
		}
	}
	for _, r := range j.Regions {
		bound += perRegion + escape*(len(r.Region)+len(r.RegionID))
	}
	if bound <= MaxJobBytes {
		return bound, true
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// A copy, so that j, the caller's, stays off the heap for this rare path.
	_ = enc.Encode(*j)
	n = buf.Len() - 1 // the newline Encode adds
	return n, n <= MaxJobBytes
}

// reasonUTF8 is the one reason for text that is not valid UTF-8, however it
// came: a CSV cell, or a JSON string that decoding would have changed.
const reasonUTF8 = "must be valid UTF-8"

// textRule says what checkText allows in a field.
type textRule int

const (
	required  textRule = 1 << iota // absent or blank is an error
	multiline                      // \n and \t are allowed (free text)
)

func checkText(p *problems, field, value string, rule textRule) {
	if reason := textProblem(value, rule); reason != "" {
		p.add(field, "%s", reason)
	}
}

// textProblem says what is wrong with value for a field of the rule, or
// returns "".
func textProblem(value string, rule textRule) string {
	switch {
	case strings.TrimSpace(value) == "":
		if rule&required != 0 {
			return "is required and must be a non-empty string"
		}
		if value != "" {
			return "must not be blank when given"
		}
		return ""
	case !utf8.ValidString(value):
		return reasonUTF8
	}
	if reason := controlProblem(value, rule&multiline != 0); reason != "" {
		return reason
	}
	// Text has no more characters than bytes: only long text is counted.
	if len(value) > MaxTextLen {
		if n := utf8.RuneCountInString(value); n > MaxTextLen {
			return fmt.Sprintf("must be at most %d characters, got %d", MaxTextLen, n)
		}
	}
	return ""
}

// controlProblem describes the first control character of s (see
// Validate), naming it and its position in characters, or returns "".
func controlProblem(s string, multiline bool) string {
	n := 0
	for _, r := range s {
		n++
		if !unicode.IsControl(r) || multiline && (r == '\n' || r == '\t') {
			continue
		}
		if multiline {
			return fmt.Sprintf("must not contain control characters other than line breaks (\\n) and tabs, found %U at character %d", r, n)
		}
		return fmt.Sprintf("must not contain control characters, found %U at character %d", r, n)
	}
	return ""
}

func checkURIs(p *problems, field string, uris []string) {
	if len(uris) > MaxURIs {
		p.add(field, "must have at most %d entries, got %d", MaxURIs, len(uris))
	}
	for i, u := range uris {
		if reason := uriProblem(u); reason != "" {
			p.add(fmt.Sprintf("%s[%d]", field, i), "%s", reason)
		}
	}
}

func uriProblem(s string) string {
	if len(s) > MaxURILen {
		return fmt.Sprintf("must be at most %d bytes, got %d", MaxURILen, len(s))
	}
	if !utf8.ValidString(s) {
		// JSON cannot carry it: the URI would change on its way to Kaleyra.
		return reasonUTF8
	}
	if reason := controlProblem(s, false); reason != "" {
		return reason
	}
	u, err := url.Parse(s)
	if err != nil || strings.ContainsAny(s, " \t\r\n") || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("must be an absolute http(s) URL, got %q", truncate(s, 80))
	}
	return ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil && strings.Trim(s, "0123456789") == ""
}

// truncate shortens s for quoting in an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
