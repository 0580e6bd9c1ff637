package queue

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
	"github.com/rcslaunch/rcslaunch/launch"
)

// DecodePayload decodes a launch task's payload into the Payload, and the
// error, that json.Unmarshal gives. The worker decodes one for every job it
// runs, and json.Unmarshal's reflection was most of the cost: so a payload
// as NewTask writes it is read by a decoder of its own instead. Anything
// else is left to json.Unmarshal, whose rules hold surprises: it matches
// names without regard to case, takes the last of a repeated name (merging
// a repeated object into the first), skips unknown names, lets null leave a
// field as it is, and decodes on past a value of the wrong type. The fast
// path takes only what none of those rules bear on: a JSON object whose
// every name is the name of a struct tag, spelled as NewTask spells it and
// once per object, with a value of its field's type (null is not a string).
func DecodePayload(b []byte) (Payload, error) {
	if p, ok := decodePayload(b); ok {
		return p, nil
	}
	var p Payload
	err := json.Unmarshal(b, &p)
	return p, err
}

// decodePayload is DecodePayload's fast path; ok is false when it leaves b
// to json.Unmarshal.
func decodePayload(b []byte) (p Payload, ok bool) {
	d := decoder{data: b, i: jsontext.SkipSpace(b, 0)}
	if d.i == len(b) || b[d.i] != '{' {
		return p, false
	}
	d.text = string(b)
	ok = decodeObject(&d, &p, payloadFields) && jsontext.SkipSpace(b, d.i) == len(b)
	return p, ok
}

// A decoder reads the JSON text data value by value, in one pass, for
// DecodePayload's fast path. It checks the grammar of JSON itself, for the
// little of it a payload uses (objects, arrays, strings and white space),
// rather than have json.Valid read the text first, which took a third of
// the time; and it reads each value where it is, rather than first find its
// end as jsontext.Members and Items do, which, object within object, would
// read a launch's text three times over.
type decoder struct {
	data []byte
	// text is data as a string, one copy that every string decoded shares,
	// but for those with escapes: one allocation where there would be one
	// a string. All of it thus stays in memory as long as one of them does.
	text string
	i    int // the start of the next value
}

// field is a member of the JSON objects of a T: its name, quoted as
// json.Marshal writes it, and what decodes its value into a T.
type field[T any] struct {
	name string
	set  func(d *decoder, dst *T) bool
}

// decodeObject decodes the JSON object at d into dst by fields, and reports
// whether it could: false when the value is not an object, when one of its
// names is not the name of one of fields, byte for byte, or appears twice,
// or when a field's set reports false. dst is then left half written.
func decodeObject[T any](d *decoder, dst *T, fields []field[T]) bool {
	var seen uint64 // bit k for fields[k]
	k := -1
	return d.list('{', '}', func() bool {
		if d.data[d.i] != '"' {
			return false
		}
		// No name of fields holds a backslash, so the first quote after
		// the opening one ends any name that can be one of them.
		n := bytes.IndexByte(d.data[d.i+1:], '"')
		if n < 0 {
			return false
		}
		end := d.i + 1 + n + 1
		name := d.data[d.i:end]
		// json.Marshal writes the fields in order: the next one is likely.
		if k++; k >= len(fields) || fields[k].name != string(name) {
			k = slices.IndexFunc(fields, func(f field[T]) bool { return f.name == string(name) })
		}
		if k < 0 || seen&(1<<k) != 0 {
			return false
		}
		seen |= 1 << k
		colon := jsontext.SkipSpace(d.data, end)
		if colon == len(d.data) || d.data[colon] != ':' {
			return false
		}
		d.i = jsontext.SkipSpace(d.data, colon+1)
		return fields[k].set(d, dst)
	})
}

// list reads the JSON object or array at d, opened by open and closed by
// close, calling each with d at the start of each of its members or items
// (which each must read, leaving d past its end), and leaves d past its
// end. It reports false, having stopped, when the value is not opened by
// open, when each reports false, or when a member or item is followed by
// neither a comma and another nor close.
func (d *decoder) list(open, close byte, each func() bool) bool {
	data := d.data
	if d.i == len(data) || data[d.i] != open {
		return false
	}
	i := jsontext.SkipSpace(data, d.i+1)
	if i < len(data) && data[i] == close {
		d.i = i + 1
		return true
	}
	for {
		d.i = i
		if i == len(data) || !each() {
			return false
		}
		if i = jsontext.SkipSpace(data, d.i); i == len(data) {
			return false
		}
		switch data[i] {
		case close:
			d.i = i + 1
			return true
		case ',':
			i = jsontext.SkipSpace(data, i+1)
		default:
			return false
		}
	}
}

// string decodes the JSON string at d into dst, as json.Unmarshal does;
// false for any other value, and for a string that is not valid JSON.
func (d *decoder) string(dst *string) bool {
	data, i := d.data, d.i
	if i == len(data) || data[i] != '"' {
		return false
	}
	// Up to the next quote, a string with nothing to decode, the usual
	// case, is that text as it is.
	if n := bytes.IndexByte(data[i+1:], '"'); n >= 0 && jsontext.Plain(data[i+1:i+1+n]) {
		*dst, d.i = d.text[i+1:i+1+n], i+1+n+1
		return true
	}
	// Any other is decoded, and checked, by jsontext.String, up to the
	// first quote that no backslash escapes.
	end := jsontext.StringEnd(data, i)
	s, ok := jsontext.String(data[i:end])
	*dst, d.i = s, end
	return ok
}

// strings decodes a JSON array of strings at d into dst, as json.Unmarshal
// does (an empty array is an empty list, not nil); false for any other
// value.
func (d *decoder) strings(dst *[]string) bool {
	list := []string{}
	ok := d.list('[', ']', func() bool {
		list = append(list, "")
		return d.string(&list[len(list)-1])
	})
	*dst = list
	return ok
}

// regions decodes a JSON array of regions at d into dst, as json.Unmarshal
// does; false for any other value, and for a region decodeObject refuses.
func (d *decoder) regions(dst *[]launch.Region) bool {
	list := []launch.Region{}
	ok := d.list('[', ']', func() bool {
		list = append(list, launch.Region{})
		return decodeObject(d, &list[len(list)-1], regionFields)
	})
	*dst = list
	return ok
}

// The fields of the objects of a payload, by the names of the struct tags of
// Payload, launch.Job, launch.Launch and launch.Region, in their order.
var (
	payloadFields = []field[Payload]{
		{`"sid"`, func(d *decoder, p *Payload) bool { return d.string(&p.SID) }},
		{`"priority"`, func(d *decoder, p *Payload) bool { return d.string((*string)(&p.Priority)) }},
		{`"job"`, func(d *decoder, p *Payload) bool { return decodeObject(d, &p.Job, jobFields) }},
	}
	jobFields = []field[launch.Job]{
		{`"id"`, func(d *decoder, j *launch.Job) bool { return d.string(&j.ID) }},
		{`"sid"`, func(d *decoder, j *launch.Job) bool { return d.string(&j.SID) }},
		{`"priority"`, func(d *decoder, j *launch.Job) bool { return d.string((*string)(&j.Priority)) }},
		{`"launch"`, func(d *decoder, j *launch.Job) bool { return decodeObject(d, &j.Launch, launchFields) }},
		{`"regions"`, func(d *decoder, j *launch.Job) bool { return d.regions(&j.Regions) }},
	}
	launchFields = []field[launch.Launch]{
		{`"agent_access_instructions"`, func(d *decoder, l *launch.Launch) bool { return d.string(&l.AgentAccessInstructions) }},
		{`"agent_no"`, func(d *decoder, l *launch.Launch) bool { return d.string(&l.AgentNo) }},
		{`"interactions_description"`, func(d *decoder, l *launch.Launch) bool { return d.string(&l.InteractionsDescription) }},
		{`"launch_name"`, func(d *decoder, l *launch.Launch) bool { return d.string(&l.LaunchName) }},
		{`"launch_type"`, func(d *decoder, l *launch.Launch) bool { return d.string(&l.LaunchType) }},
		{`"optin_description"`, func(d *decoder, l *launch.Launch) bool { return d.string(&l.OptinDescription) }},
		{`"optout_description"`, func(d *decoder, l *launch.Launch) bool { return d.string(&l.OptoutDescription) }},
		{`"provider_launch_id"`, func(d *decoder, l *launch.Launch) bool { return d.string(&l.ProviderLaunchID) }},
		{`"screenshot_uris"`, func(d *decoder, l *launch.Launch) bool { return d.strings(&l.ScreenshotURIs) }},
		{`"trigger_description"`, func(d *decoder, l *launch.Launch) bool { return d.string(&l.TriggerDescription) }},
		{`"video_uris"`, func(d *decoder, l *launch.Launch) bool { return d.strings(&l.VideoURIs) }},
	}
	regionFields = []field[launch.Region]{
		{`"region"`, func(d *decoder, r *launch.Region) bool { return d.string(&r.Region) }},
		{`"region_id"`, func(d *decoder, r *launch.Region) bool { return d.string(&r.RegionID) }},
	}
)
