package launch

import "github.com/rcslaunch/rcslaunch/internal/jsontext"

// scanObject and scanArray split JSON that json.Valid has accepted, which
// Parse checks first, with jsontext's scanners. They replace
// encoding/json's Decoder.Token, which made strict parsing the largest cost
// of a bulk enqueue (BENCHMARKS.md).

// scanObject splits a valid JSON object into its members, in order; ok is
// false when data is not an object.
func scanObject(data []byte) (ms members, ok bool) {
	if jsontext.Kind(data) != '{' {
		return nil, false
	}
	for name, value := range jsontext.Members(data) {
		text, _ := jsontext.String(name)
		ms = append(ms, member{name: text, value: value})
	}
	return ms, true
}

// scanArray splits a valid JSON array into its items; ok is false when data
// is not an array.
func scanArray(data []byte) (items [][]byte, ok bool) {
	if jsontext.Kind(data) != '[' {
		return nil, false
	}
	for item := range jsontext.Items(data) {
		items = append(items, item)
	}
	return items, true
}
