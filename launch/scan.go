package launch

import "github.com/rcslaunch/rcslaunch/internal/jsontext"

// The scanners below split JSON that json.Valid has accepted, which Parse
// checks first: on valid input they only have to find where each value ends.
// They replace encoding/json's Decoder.Token, which made strict parsing the
// largest cost of a bulk enqueue (BENCHMARKS.md).

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// valueEnd returns the index just after the value that starts at i.
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = stringEnd(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // a number, true, false or null
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}

// stringEnd returns the index just after the string that starts at i.
func stringEnd(data []byte, i int) int { return jsontext.StringEnd(data, i) }

// scanObject splits a valid JSON object into its members, in order; ok is
// false when data is not an object.
func scanObject(data []byte) (ms members, ok bool) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	for i < len(data) && data[i] != '}' {
		end := stringEnd(data, i)
		name, _ := jsontext.String(data[i:end])
		i = skipSpace(data, end)
		i = skipSpace(data, i+1) // the colon
		end = valueEnd(data, i)
		ms = append(ms, member{name: name, value: data[i:end]})
		i = skipSpace(data, end)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return ms, true
}

// scanArray splits a valid JSON array into its items; ok is false when data
// is not an array.
func scanArray(data []byte) (items [][]byte, ok bool) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '[' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	for i < len(data) && data[i] != ']' {
		end := valueEnd(data, i)
		items = append(items, data[i:end])
		i = skipSpace(data, end)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return items, true
}
