package sim

import (
	"encoding/json"
	"strconv"

	"github.com/rcslaunch/rcslaunch/internal/jsontext"
)

// The decoders below do what json.Unmarshal does with a launch body that
// json.Valid has accepted, which parsePayload checks first, with jsontext's
// scanners, as launch/scan.go does for a job. Decoding through reflection,
// once per map and once per field, was most of the simulator's CPU per call
// (BENCHMARKS.md). Values are slices of the body, which nothing writes to,
// rather than copies.

// decodeObject is json.Unmarshal of the valid JSON value data into a
// map[string]json.RawMessage: nil when data is anything but an object
// (where Unmarshal fails or, for null, leaves the map nil), else a member
// per name, decoded as Unmarshal decodes it, the last of a repeated name
// winning. The map is made for size members, so that the usual object
// does not grow it.
func decodeObject(data []byte, size int) map[string]json.RawMessage {
	if jsontext.Kind(data) != '{' {
		return nil
	}
	m := make(map[string]json.RawMessage, size)
	for name, value := range jsontext.Members(data) {
		m[memberName(name)] = value
	}
	return m
}

// memberName decodes the quoted member name q as jsontext.String does, but
// returns the names parsePayload looks up without allocating a string.
func memberName(q []byte) string {
	if name, ok := knownNames[string(q)]; ok {
		return name
	}
	name, _ := jsontext.String(q)
	return name
}

// knownNames are the member names the simulator looks up, by their JSON
// text when written without escapes.
var knownNames = func() map[string]string {
	names := []string{"launch", "regions", "launch_type", "region", "region_id"}
	names = append(names, requiredFields...)
	names = append(names, optionalEchoed[:]...)
	m := make(map[string]string, len(names))
	for _, name := range names {
		m[strconv.Quote(name)] = name
	}
	return m
}()

// decodeObjects is json.Unmarshal of the valid JSON value data into a
// []map[string]json.RawMessage. Like Unmarshal, it fails (ok false) unless
// data is an array of objects and nulls, but still decodes every item it
// can: any other item is left nil. A value that is no array gives nil.
func decodeObjects(data []byte) (ms []map[string]json.RawMessage, ok bool) {
	if jsontext.Kind(data) != '[' {
		return nil, false
	}
	ms, ok = []map[string]json.RawMessage{}, true
	for item := range jsontext.Items(data) {
		m := decodeObject(item, 2) // region_id and region
		if m == nil && !jsontext.IsNull(item) {
			ok = false
		}
		ms = append(ms, m)
	}
	return ms, ok
}

// nesting returns how deeply the valid JSON value data nests arrays and
// objects: 0 for a string, number or literal.
func nesting(data []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			i = jsontext.StringEnd(data, i) - 1
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}
