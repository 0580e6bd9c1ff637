package accounts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Both formats are read field by field into an entry, rather than each
// decoded into a struct by its own strict mode (json's
// DisallowUnknownFields, yaml's KnownFields): encoding/json matches names
// without regard to case and keeps the last of a name given twice, and
// neither names the account or the field of a wrong type. Here a name must
// be one of fields exactly and given once, and every problem names its field.

// kind is what a value in the file is, as its errors say it.
type kind string

const (
	kindString kind = "a string"
	kindInt    kind = "a whole number"
	kindFloat  kind = "a number with a fraction"
	kindBool   kind = "true or false"
	kindNull   kind = "null"
	kindList   kind = "a list"
	kindObject kind = "an object"
	kindNumber kind = "a number"
	kindOther  kind = "a value of another type"
	// kindReported marks a value whose problem is reported already.
	kindReported kind = "(reported)"
)

// value is one field's value: str for a string, f for any number and i for
// a whole one.
type value struct {
	kind kind
	str  string
	f    float64
	i    int64
}

// entry is one account as the file gives it: its known fields, each given
// once, and the problems found decoding it; values is nil when it is not an
// object at all.
type entry struct {
	values   map[string]value
	problems []string
}

// add records the field name of e, or a problem when the name is unknown or
// given twice.
func (e *entry) add(name string, v value, problem string) {
	switch {
	case !slices.Contains(fields, name):
		e.problems = append(e.problems, fmt.Sprintf("%s: unknown field (want %s)", quote(name, 40), strings.Join(fields, ", ")))
	case e.has(name):
		e.problems = append(e.problems, name+": given twice")
	case problem != "":
		e.problems = append(e.problems, name+": "+problem)
		e.values[name] = value{kind: kindReported}
	case v.kind == kindNull:
		e.problems = append(e.problems, name+": null; leave the field out for the default")
		e.values[name] = value{kind: kindReported}
	default:
		e.values[name] = v
	}
}

func (e *entry) has(name string) bool { _, ok := e.values[name]; return ok }

// notObject is the entry for a list element that is not an object.
func notObject(k kind) entry {
	return entry{problems: []string{fmt.Sprintf("want an object (%s), got %s", strings.Join(fields, ", "), k)}}
}

// decodeJSON reads data as a JSON list of objects.
func decodeJSON(data []byte) ([]entry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil {
		return nil, jsonError(err)
	} else if tok != json.Delim('[') {
		return nil, fmt.Errorf("want a list of accounts, got %s", jsonKind(tok))
	}
	var entries []entry
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonError(err)
		}
		entries = append(entries, jsonEntry(raw))
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not valid JSON: more after the list of accounts")
	}
	return entries, nil
}

// jsonEntry reads raw, valid JSON, as an account.
func jsonEntry(raw json.RawMessage) entry {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, _ := dec.Token()
	if tok != json.Delim('{') {
		return notObject(jsonKind(tok))
	}
	e := entry{values: map[string]value{}}
	for dec.More() {
		tok, _ := dec.Token()
		name, _ := tok.(string)
		var v json.RawMessage
		_ = dec.Decode(&v) // raw is valid
		val, problem := jsonValue(v)
		e.add(name, val, problem)
	}
	return e
}

// jsonValue reads one field's value, valid JSON.
func jsonValue(raw json.RawMessage) (value, string) {
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return value{kind: kindString, str: s}, ""
	case 'n':
		return value{kind: kindNull}, ""
	case 't', 'f':
		return value{kind: kindBool}, ""
	case '[':
		return value{kind: kindList}, ""
	case '{':
		return value{kind: kindObject}, ""
	}
	text := string(raw)
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return value{}, fmt.Sprintf("%s is out of range", quote(text, 40))
	}
	if strings.ContainsAny(text, ".eE") {
		return value{kind: kindFloat, f: f}, ""
	}
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return value{}, fmt.Sprintf("%s is out of range", quote(text, 40))
	}
	return value{kind: kindInt, f: f, i: i}, ""
}

// jsonKind names the kind of a JSON token that starts a value.
func jsonKind(tok json.Token) kind {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return kindList
		}
		return kindObject
	case string:
		return kindString
	case json.Number:
		return kindNumber
	case bool:
		return kindBool
	case nil:
		return kindNull
	}
	return kindOther
}

// jsonError says where data is not valid JSON.
func jsonError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not valid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("not valid JSON: it ends early")
	}
	return fmt.Errorf("not valid JSON: %w", err)
}

// decodeYAML reads data as a YAML document holding a list of mappings.
func decodeYAML(data []byte) ([]entry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err == io.EOF {
		return nil, errors.New("empty; want a list of accounts")
	} else if err != nil {
		return nil, fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var more yaml.Node
	if err := dec.Decode(&more); err != io.EOF {
		return nil, errors.New("want one YAML document, got more")
	}
	list := resolve(&doc)
	if list.Kind == yaml.DocumentNode && len(list.Content) == 1 {
		list = resolve(list.Content[0])
	}
	if list.Kind != yaml.SequenceNode {
		if k := yamlValue(list).kind; k == kindNull {
			return nil, errors.New("empty; want a list of accounts")
		} else {
			return nil, fmt.Errorf("want a list of accounts, got %s", k)
		}
	}
	entries := make([]entry, 0, len(list.Content))
	for _, n := range list.Content {
		entries = append(entries, yamlEntry(resolve(n)))
	}
	return entries, nil
}

// yamlEntry reads n as an account.
func yamlEntry(n *yaml.Node) entry {
	if n.Kind != yaml.MappingNode {
		return notObject(yamlValue(n).kind)
	}
	e := entry{values: map[string]value{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		name := k.Value
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			name = fmt.Sprintf("(%s)", yamlValue(k).kind)
		}
		v := yamlValue(resolve(n.Content[i+1]))
		problem := ""
		if v.kind == "" {
			problem = "out of range"
		}
		e.add(name, v, problem)
	}
	return e
}

// yamlValue reads a resolved node as a value; its kind is "" for a number
// out of range.
func yamlValue(n *yaml.Node) value {
	switch n.Kind {
	case yaml.SequenceNode:
		return value{kind: kindList}
	case yaml.MappingNode:
		return value{kind: kindObject}
	case yaml.ScalarNode:
	default:
		return value{kind: kindOther}
	}
	switch n.ShortTag() {
	case "!!str":
		return value{kind: kindString, str: n.Value}
	case "!!null":
		return value{kind: kindNull}
	case "!!bool":
		return value{kind: kindBool}
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return value{}
		}
		return value{kind: kindInt, i: i, f: float64(i)}
	case "!!float":
		var f float64
		// YAML reads a whole number too large for an int as a float.
		if err := n.Decode(&f); err != nil || !strings.ContainsAny(strings.ToLower(n.Value), ".eni") {
			return value{}
		}
		return value{kind: kindFloat, f: f}
	}
	return value{kind: kindOther}
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}
