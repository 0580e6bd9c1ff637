package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
	"github.com/rcslaunch/rcslaunch/internal/throttle"
	"github.com/rcslaunch/rcslaunch/launch"
	"github.com/rcslaunch/rcslaunch/launch/launchtest"
	"github.com/rcslaunch/rcslaunch/ops"
)

// The OpenAPI document is plain JSON, read with encoding/json; the checker
// below implements the part of OpenAPI 3.0's schema language the document
// uses, and TestOpenAPIDocument fails if the document uses any other
// keyword, so that nothing is silently left unchecked.

// schemaKeywords are the schema keywords the checker understands (the
// annotations among them are not checked).
var schemaKeywords = map[string]bool{
	"$ref": true, "type": true, "nullable": true, "enum": true, "format": true,
	"properties": true, "required": true, "additionalProperties": true,
	"items": true, "minItems": true, "maxItems": true,
	"minLength": true, "maxLength": true, "pattern": true,
	"minimum": true, "maximum": true, "exclusiveMinimum": true,
	"description": true, "example": true, "default": true, "title": true,
}

// mountedElsewhere are documented routes that routes() does not register:
// cmd/rcslaunch mounts them beside the API on the same mux.
var mountedElsewhere = map[string]bool{"GET /metrics": true}

// spec is the parsed document.
type spec struct {
	doc map[string]any
	ops []*operation
}

// operation is one documented method on one path.
type operation struct {
	method, path string // "POST", "/v1/launches/{id}"
	re           *regexp.Regexp
	obj          map[string]any
}

func (o *operation) key() string { return o.method + " " + o.path }

var (
	specOnce sync.Once
	specVal  *spec
	specErr  error
)

// apiSpec parses the embedded document once.
func apiSpec(t testing.TB) *spec {
	t.Helper()
	specOnce.Do(func() { specVal, specErr = parseSpec(openAPIDoc) })
	if specErr != nil {
		t.Fatalf("openapi.json: %v", specErr)
	}
	return specVal
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return v, nil
}

func parseSpec(data []byte) (*spec, error) {
	v, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a JSON object")
	}
	s := &spec{doc: doc}
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no paths")
	}
	for _, p := range sortedKeys(paths) {
		item, ok := paths[p].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("path %s is not an object", p)
		}
		re := "^" + regexp.MustCompile(`\\\{[^/]+?\\\}`).ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$"
		for _, m := range sortedKeys(item) {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
			default:
				continue
			}
			obj, ok := item[m].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s %s is not an object", m, p)
			}
			s.ops = append(s.ops, &operation{method: strings.ToUpper(m), path: p, re: regexp.MustCompile(re), obj: obj})
		}
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ref returns what a local reference ("#/components/…") points at.
func (s *spec) ref(ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("reference %q is not local", ref)
	}
	var cur any = s.doc
	for _, part := range strings.Split(rest, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok || m[part] == nil {
			return nil, fmt.Errorf("reference %q does not resolve", ref)
		}
		cur = m[part]
	}
	return cur, nil
}

// deref follows $ref until it reaches an object without one.
func (s *spec) deref(v any) map[string]any {
	for i := 0; i < 20; i++ {
		m, _ := v.(map[string]any)
		r, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var err error
		if v, err = s.ref(r); err != nil {
			return nil
		}
	}
	return nil
}

// find returns the documented operation a request is routed to, or nil.
func (s *spec) find(method, path string) *operation {
	for _, o := range s.ops {
		if o.method == method && o.re.MatchString(path) {
			return o
		}
	}
	return nil
}

func (s *spec) op(key string) *operation {
	for _, o := range s.ops {
		if o.key() == key {
			return o
		}
	}
	return nil
}

// statuses are an operation's documented response codes.
func (o *operation) statuses() []string {
	resp, _ := o.obj["responses"].(map[string]any)
	return sortedKeys(resp)
}

// ---- the schema checker ----

// validate checks v (decoded with UseNumber) against schema and returns
// every problem, each with its path from at.
func (s *spec) validate(schema any, v any, at string) []string {
	sc, ok := schema.(map[string]any)
	if !ok {
		return []string{at + ": the schema is not an object"}
	}
	if r, ok := sc["$ref"].(string); ok {
		target, err := s.ref(r)
		if err != nil {
			return []string{at + ": " + err.Error()}
		}
		return s.validate(target, v, at)
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	typ, _ := sc["type"].(string)
	if v == nil {
		if typ != "" && sc["nullable"] != true {
			bad("null where %s is required", typ)
		}
		return errs
	}
	if enum, ok := sc["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) && reflect.TypeOf(e) == reflect.TypeOf(v) {
				found = true
			}
		}
		if !found {
			bad("%v is not one of %v", v, enum)
		}
	}
	switch typ {
	case "":
		// any value
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("want an object, got %s", kindOf(v))
			return errs
		}
		for _, r := range asList(sc["required"]) {
			if _, ok := m[r.(string)]; !ok {
				bad("required member %q is missing", r)
			}
		}
		props, _ := sc["properties"].(map[string]any)
		for _, k := range sortedKeys(m) {
			if ps, ok := props[k]; ok {
				errs = append(errs, s.validate(ps, m[k], at+"."+k)...)
				continue
			}
			switch ap := sc["additionalProperties"].(type) {
			case bool:
				if !ap {
					bad("member %q is not documented", k)
				}
			case map[string]any:
				errs = append(errs, s.validate(ap, m[k], at+"."+k)...)
			}
		}
	case "array":
		list, ok := v.([]any)
		if !ok {
			bad("want an array, got %s", kindOf(v))
			return errs
		}
		if n, ok := num(sc["minItems"]); ok && float64(len(list)) < n {
			bad("%d items, fewer than %v", len(list), n)
		}
		if n, ok := num(sc["maxItems"]); ok && float64(len(list)) > n {
			bad("%d items, more than %v", len(list), n)
		}
		if items, ok := sc["items"]; ok {
			for i, item := range list {
				errs = append(errs, s.validate(items, item, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			bad("want a string, got %s", kindOf(v))
			return errs
		}
		n := utf8.RuneCountInString(str)
		if min, ok := num(sc["minLength"]); ok && float64(n) < min {
			bad("%d characters, fewer than %v", n, min)
		}
		if max, ok := num(sc["maxLength"]); ok && float64(n) > max {
			bad("%d characters, more than %v", n, max)
		}
		if p, ok := sc["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			bad("%.60q does not match %s", str, p)
		}
		switch sc["format"] {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				bad("%q is not an RFC 3339 date-time", str)
			}
		case "uri":
			if u, err := url.Parse(str); err != nil || !u.IsAbs() {
				bad("%.60q is not an absolute URI", str)
			}
		}
	case "integer", "number":
		jn, ok := v.(json.Number)
		if !ok {
			bad("want a %s, got %s", typ, kindOf(v))
			return errs
		}
		f, err := jn.Float64()
		if err != nil {
			bad("%s is not a number", jn)
			return errs
		}
		if _, err := jn.Int64(); typ == "integer" && err != nil {
			bad("%s is not an integer", jn)
		}
		if min, ok := num(sc["minimum"]); ok && f < min {
			bad("%v is less than %v", f, min)
		}
		if min, ok := num(sc["minimum"]); ok && sc["exclusiveMinimum"] == true && f == min {
			bad("%v is not more than %v", f, min)
		}
		if max, ok := num(sc["maximum"]); ok && f > max {
			bad("%v is more than %v", f, max)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("want a boolean, got %s", kindOf(v))
		}
	default:
		bad("the schema has an unknown type %q", typ)
	}
	return errs
}

func asList(v any) []any { l, _ := v.([]any); return l }

func num(v any) (float64, bool) {
	jn, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := jn.Float64()
	return f, err == nil
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// checkSchema fails the test unless data is JSON valid against the schema
// at ref.
func (s *spec) checkSchema(t testing.TB, ref string, data []byte) {
	t.Helper()
	v, err := decodeJSON(data)
	if err != nil {
		t.Fatalf("not JSON (%v): %s", err, data)
	}
	if errs := s.validate(map[string]any{"$ref": ref}, v, "body"); len(errs) > 0 {
		t.Fatalf("does not match %s:\n  %s\nbody: %s", ref, strings.Join(errs, "\n  "), data)
	}
}

// checkReply checks an answer of a documented route against the document:
// its status is documented, its headers are there, its content type and
// body match. For a 2xx answer the request's body and query must match what
// the document says the route takes. It returns "METHOD /path STATUS", or
// "" when the route is not documented.
func (s *spec) checkReply(t testing.TB, method string, u *url.URL, reqBody []byte, r reply) string {
	t.Helper()
	o := s.find(method, u.Path)
	if o == nil {
		return ""
	}
	if mountedElsewhere[o.key()] && r.code == http.StatusNotFound && !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		return "" // not mounted on this mux
	}
	where := fmt.Sprintf("%s %s → %d", method, u.RequestURI(), r.code)
	responses, _ := o.obj["responses"].(map[string]any)
	doc := s.deref(responses[strconv.Itoa(r.code)])
	if doc == nil {
		t.Errorf("%s: status %d is not documented for %s (body %.200s)", where, r.code, o.key(), r.body)
		return ""
	}
	headers, _ := doc["headers"].(map[string]any)
	for _, h := range sortedKeys(headers) {
		if r.header.Get(h) == "" {
			t.Errorf("%s: documented header %s is missing", where, h)
		}
	}
	content, _ := doc["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.body) > 0 {
			t.Errorf("%s: a body where none is documented", where)
		}
	} else {
		media, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
		mt, _ := content[media].(map[string]any)
		if err != nil || mt == nil {
			t.Errorf("%s: Content-Type %q, documented %v", where, r.header.Get("Content-Type"), sortedKeys(content))
		} else {
			var v any = string(r.body)
			if media == "application/json" {
				if v, err = decodeJSON(r.body); err != nil {
					t.Errorf("%s: body is not JSON: %v\n%.300s", where, err, r.body)
				}
			}
			if err == nil {
				if errs := s.validate(mt["schema"], v, "body"); len(errs) > 0 {
					t.Errorf("%s: body does not match the document:\n  %s\nbody: %.500s", where, strings.Join(errs, "\n  "), r.body)
				}
			}
		}
	}
	if r.code/100 == 2 {
		s.checkRequest(t, where, o, u, reqBody)
	}
	return o.key() + " " + strconv.Itoa(r.code)
}

// checkRequest checks an accepted request against the operation's
// documented body and query parameters.
func (s *spec) checkRequest(t testing.TB, where string, o *operation, u *url.URL, body []byte) {
	t.Helper()
	if rb := s.deref(o.obj["requestBody"]); rb != nil && len(body) > 0 {
		mt, _ := rb["content"].(map[string]any)["application/json"].(map[string]any)
		v, err := decodeJSON(body)
		if err != nil {
			t.Errorf("%s: accepted a body that is not JSON: %v", where, err)
		} else if errs := s.validate(mt["schema"], v, "request"); len(errs) > 0 {
			t.Errorf("%s: accepted a request body the document calls invalid:\n  %s", where, strings.Join(errs, "\n  "))
		}
	}
	params := map[string]map[string]any{}
	for _, p := range asList(o.obj["parameters"]) {
		if p := s.deref(p); p["in"] == "query" {
			params[p["name"].(string)] = p
		}
	}
	for name, vals := range u.Query() {
		p := params[name]
		if p == nil {
			t.Errorf("%s: query parameter %q is not documented", where, name)
			continue
		}
		sc := s.deref(p["schema"])
		var v any = vals[0]
		switch sc["type"] {
		case "integer", "number":
			v = json.Number(vals[0])
		case "boolean":
			b, err := strconv.ParseBool(vals[0])
			if err != nil {
				t.Errorf("%s: %s=%q is not a boolean", where, name, vals[0])
				continue
			}
			v = b
		}
		if errs := s.validate(p["schema"], v, name); len(errs) > 0 {
			t.Errorf("%s: accepted a query the document calls invalid: %s", where, strings.Join(errs, "; "))
		}
	}
}

// ---- the document on its own ----

func TestOpenAPIDocument(t *testing.T) {
	s := apiSpec(t)
	if v, _ := s.doc["openapi"].(string); !regexp.MustCompile(`^3\.0\.\d+$`).MatchString(v) {
		t.Fatalf("openapi = %q, want 3.0.x", v)
	}
	info, _ := s.doc["info"].(map[string]any)
	if info["title"] == "" || info["title"] == nil || info["version"] == nil {
		t.Fatalf("info: %v", info)
	}

	// Every reference resolves; every schema uses only known keywords.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				if _, err := s.ref(r); err != nil {
					t.Errorf("%s: %v", at, err)
				}
			}
			for _, k := range sortedKeys(v) {
				if k == "schema" || at == "#/components/schemas" {
					checkSchemaNode(t, s, v[k], at+"/"+k)
				}
				walk(v[k], at+"/"+k)
			}
		case []any:
			for i, x := range v {
				walk(x, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(s.doc, "#")

	schemes, _ := s.doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	for _, name := range []string{"producerToken", "adminToken"} {
		sc, _ := schemes[name].(map[string]any)
		if sc["type"] != "http" || sc["scheme"] != "bearer" {
			t.Errorf("security scheme %s: %v, want http bearer", name, sc)
		}
	}

	allowed := map[string]bool{"200": true, "201": true, "400": true, "401": true, "403": true, "404": true,
		"409": true, "413": true, "415": true, "429": true, "500": true, "503": true}
	ids := map[string]string{}
	for _, o := range s.ops {
		id, _ := o.obj["operationId"].(string)
		if id == "" || ids[id] != "" {
			t.Errorf("%s: operationId %q missing or also used by %s", o.key(), id, ids[id])
		}
		ids[id] = o.key()

		// Path parameters: declared exactly as the path names them.
		var declared []string
		for _, p := range asList(o.obj["parameters"]) {
			p := s.deref(p)
			if p["in"] == "path" {
				if p["required"] != true {
					t.Errorf("%s: path parameter %v not required", o.key(), p["name"])
				}
				declared = append(declared, p["name"].(string))
			}
		}
		var named []string
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(o.path, -1) {
			named = append(named, m[1])
		}
		if !slices.Equal(declared, named) {
			t.Errorf("%s: path parameters declared %q, named %q", o.key(), declared, named)
		}
		if slices.Contains(named, "id") && !slices.Contains(o.statuses(), "400") {
			t.Errorf("%s: an {id} is checked (400) but 400 is undocumented", o.key())
		}

		// Security is explicit on every operation.
		sec, ok := o.obj["security"].([]any)
		if !ok {
			t.Errorf("%s: no security (use [] for a public route)", o.key())
		}
		for _, req := range sec {
			for name := range req.(map[string]any) {
				if schemes[name] == nil {
					t.Errorf("%s: security scheme %q is not defined", o.key(), name)
				}
			}
		}

		// Responses: only the API's statuses; secured routes document the
		// refusals; every error is the one error shape.
		codes := o.statuses()
		for _, c := range codes {
			if !allowed[c] {
				t.Errorf("%s: status %s", o.key(), c)
			}
			resp := s.deref(o.obj["responses"].(map[string]any)[c])
			if resp == nil || resp["description"] == nil {
				t.Errorf("%s %s: no description", o.key(), c)
				continue
			}
			if c[0] == '4' || c[0] == '5' {
				mt, _ := resp["content"].(map[string]any)["application/json"].(map[string]any)
				if ref, _ := mt["schema"].(map[string]any)["$ref"].(string); ref != "#/components/schemas/Error" {
					t.Errorf("%s %s: error schema %v, want the Error schema", o.key(), c, mt["schema"])
				}
			}
		}
		if len(sec) > 0 && (!slices.Contains(codes, "401") || !slices.Contains(codes, "403") || !slices.Contains(codes, "429")) {
			t.Errorf("%s: secured but 401, 403 or 429 undocumented", o.key())
		}
		if rb := s.deref(o.obj["requestBody"]); rb != nil {
			if _, ok := num(rb["x-max-body-bytes"]); !ok {
				t.Errorf("%s: request body without x-max-body-bytes", o.key())
			}
			if !slices.Contains(codes, "413") || !slices.Contains(codes, "415") {
				t.Errorf("%s: request body without 413 (its limit) or 415 (not JSON)", o.key())
			}
		}
	}
	unauth := s.deref(map[string]any{"$ref": "#/components/responses/Unauthorized"})
	if unauth["headers"].(map[string]any)["WWW-Authenticate"] == nil {
		t.Error("401 does not document WWW-Authenticate")
	}
	throttled := s.deref(map[string]any{"$ref": "#/components/responses/Throttled"})
	if hd, _ := throttled["headers"].(map[string]any); hd["Retry-After"] == nil {
		t.Error("429 does not document Retry-After")
	}
}

// checkSchemaNode fails on keywords the checker does not implement, on
// patterns Go cannot compile, and on $ref with siblings (which OpenAPI 3.0
// ignores).
func checkSchemaNode(t *testing.T, s *spec, v any, at string) {
	t.Helper()
	sc, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s: schema is not an object", at)
		return
	}
	if _, ok := sc["$ref"]; ok && len(sc) > 1 {
		t.Errorf("%s: $ref with siblings %v", at, sortedKeys(sc))
	}
	for k := range sc {
		if !schemaKeywords[k] {
			t.Errorf("%s: keyword %q is not understood by the test's schema checker", at, k)
		}
	}
	if p, ok := sc["pattern"].(string); ok {
		if _, err := regexp.Compile(p); err != nil {
			t.Errorf("%s: pattern: %v", at, err)
		}
	}
	props, _ := sc["properties"].(map[string]any)
	for _, r := range asList(sc["required"]) {
		if props[r.(string)] == nil {
			t.Errorf("%s: required %q is not a property", at, r)
		}
	}
	for _, k := range sortedKeys(props) {
		checkSchemaNode(t, s, props[k], at+"/properties/"+k)
	}
	if items, ok := sc["items"]; ok {
		checkSchemaNode(t, s, items, at+"/items")
	}
	if ap, ok := sc["additionalProperties"].(map[string]any); ok {
		checkSchemaNode(t, s, ap, at+"/additionalProperties")
	}
}

// ---- the document against the code ----

// TestOpenAPIRoutes checks that the routes routes() registers and the
// documented ones are the same, with the same access, and probes each
// documented route to see that the handler serves it.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	s := apiSpec(t)
	table := map[string]route{}
	for _, rt := range (&Server{}).routeTable() {
		if strings.HasPrefix(rt.path, "/ui") { // HTML pages, not part of the API document
			continue
		}
		key := rt.method + " " + rt.path
		table[key] = rt
		o := s.op(key)
		if o == nil {
			t.Errorf("route %s is registered but not documented in openapi.json", key)
			continue
		}
		var schemes []string
		for _, req := range o.obj["security"].([]any) {
			schemes = append(schemes, sortedKeys(req.(map[string]any))...)
		}
		sort.Strings(schemes)
		want := map[access][]string{
			accessPublic: nil, accessProducer: {"adminToken", "producerToken"}, accessOperator: {"adminToken"},
		}[rt.access]
		if !slices.Equal(schemes, want) {
			t.Errorf("%s: documented security %q, the route takes %q", key, schemes, want)
		}
	}

	e := newEnv(t)
	for _, o := range s.ops {
		if _, ok := table[o.key()]; !ok && !mountedElsewhere[o.key()] {
			t.Errorf("%s is documented but routes() does not register it", o.key())
			continue
		}
		r := e.do(o.method, samplePath(o.path), adminToken, sampleRequest(t, o.key()))
		if mountedElsewhere[o.key()] && r.code == http.StatusNotFound && !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Logf("%s is not mounted by New; it is checked where it is mounted", o.key())
			continue
		}
		var ae apiErr
		_ = json.Unmarshal(r.body, &ae)
		if r.code == http.StatusMethodNotAllowed || (r.code == http.StatusNotFound && strings.HasPrefix(ae.Error.Message, "no such route")) {
			t.Errorf("%s is documented but the handler does not route it: %d %s", o.key(), r.code, r.body)
		}
	}
}

// sampleRequest is a body each documented route accepts.
func sampleRequest(t *testing.T, key string) []byte {
	switch key {
	case "POST /v1/launches":
		return jobBody(t, "sample")
	case "POST /v1/launches:batch":
		return mustJSON(t, map[string]any{"jobs": []any{launchtest.Map("sample")}})
	case "POST /v1/deadletters:retry", "POST /v1/deadletters:delete":
		return []byte(`{"all": true}`)
	}
	return nil
}

// TestOpenAPIMirrorsCode checks the document's limits, names and
// enumerations against the constants and types they describe.
func TestOpenAPIMirrorsCode(t *testing.T) {
	s := apiSpec(t)
	sch := func(name string) map[string]any {
		t.Helper()
		m := s.deref(map[string]any{"$ref": "#/components/schemas/" + name})
		if m == nil {
			t.Fatalf("no schema %s", name)
		}
		return m
	}
	prop := func(m map[string]any, name string) map[string]any {
		t.Helper()
		p := s.deref(m["properties"].(map[string]any)[name])
		if p == nil {
			t.Fatalf("no property %s", name)
		}
		return p
	}
	wantNum := func(what string, v any, want int) {
		t.Helper()
		if n, ok := num(v); !ok || n != float64(want) {
			t.Errorf("%s = %v, want %d", what, v, want)
		}
	}
	wantNum("RequiredText.maxLength", sch("RequiredText")["maxLength"], launch.MaxTextLen)
	wantNum("OptionalText.maxLength", sch("OptionalText")["maxLength"], launch.MaxTextLen)
	wantNum("Job.id.maxLength", prop(sch("Job"), "id")["maxLength"], launch.MaxIDLen)
	wantNum("Job.regions.maxItems", prop(sch("Job"), "regions")["maxItems"], launch.MaxRegions)
	wantNum("URIList.maxItems", sch("URIList")["maxItems"], launch.MaxURIs)
	wantNum("URIList.items.maxLength", sch("URIList")["items"].(map[string]any)["maxLength"], launch.MaxURILen)
	wantNum("BatchRequest.jobs.maxItems", prop(sch("BatchRequest"), "jobs")["maxItems"], MaxBatchJobs)
	if d, _ := prop(sch("Launch"), "launch_type")["default"].(string); d != launch.DefaultLaunchType {
		t.Errorf("launch_type default %q, want %q", d, launch.DefaultLaunchType)
	}
	for key, want := range map[string]int{
		"POST /v1/launches": maxJobBody, "POST /v1/launches:batch": maxBatchBody,
		"POST /v1/deadletters:retry": maxAdminBody, "POST /v1/deadletters:delete": maxAdminBody,
	} {
		wantNum(key+" x-max-body-bytes", s.deref(s.op(key).obj["requestBody"])["x-max-body-bytes"], want)
	}
	for _, key := range []string{"GET /v1/deadletters", "GET /v1/batches"} {
		for _, p := range asList(s.op(key).obj["parameters"]) {
			if p := s.deref(p); p["name"] == "limit" {
				sc := s.deref(p["schema"])
				wantNum(key+" limit maximum", sc["maximum"], maxPageSize)
				wantNum(key+" limit default", sc["default"], defaultPageSize)
			}
		}
	}
	wantNum("BatchRequest.name.maxLength", prop(sch("BatchRequest"), "name")["maxLength"], MaxBatchName)
	wantNum("PathID.maxLength", sch("PathID")["maxLength"], launch.MaxIDLen)
	if p, _ := sch("PathID")["pattern"].(string); "^$|"+p != prop(sch("Job"), "id")["pattern"] {
		t.Errorf("PathID.pattern %q is not Job.id's %q without the empty ID", p, prop(sch("Job"), "id")["pattern"])
	}
	// The limits the document states in words.
	desc := s.doc["info"].(map[string]any)["description"].(string)
	batchDesc := s.op("POST /v1/launches:batch").obj["description"].(string)
	for _, c := range []struct{ text, want string }{
		{desc, fmt.Sprintf("headers in %d s", int(DefaultLimits.ReadHeaderTimeout/time.Second))},
		{desc, fmt.Sprintf("the whole request in %d min", int(DefaultLimits.ReadTimeout/time.Minute))},
		{desc, fmt.Sprintf("a batch has %d min", int(batchDeadline/time.Minute))},
		{desc, fmt.Sprintf("idle for %d min", int(DefaultLimits.IdleTimeout/time.Minute))},
		{desc, fmt.Sprintf("headers over %d KiB", DefaultLimits.MaxHeaderBytes>>10)},
		{desc, fmt.Sprintf("at %d open connections", DefaultLimits.MaxConns)},
		{batchDesc, fmt.Sprintf("at most %d batches, and %d MiB", maxBatchRequests, batchBodyBudget>>20)},
		{batchDesc, fmt.Sprintf("or %d MiB when", maxBatchBody>>20)},
	} {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("the document does not say %q", c.want)
		}
	}
	for _, c := range []struct {
		schema string
		typ    any
		resp   bool // an answer: its required members are the fields always written
	}{
		{"Job", launch.Job{}, false}, {"Launch", launch.Launch{}, false}, {"Region", launch.Region{}, false},
		{"FieldError", launch.FieldError{}, true}, {"JobRecord", store.Record{}, true}, {"Attempt", store.Attempt{}, true},
		{"LaunchAnswer", launchAnswer{}, true}, {"BatchAnswer", batchAnswer{}, true}, {"DeadLetterPage", deadLetterPage{}, true},
		{"Outcome", outcome{}, true}, {"Selection", selection{}, false}, {"BatchRequest", batchRequest{}, false},
		{"Batch", store.Batch{}, true}, {"BatchPage", batchPage{}, true}, {"LaunchFollow", store.LaunchFollow{}, true},
		{"QueueCounts", ops.QueueCounts{}, true},
	} {
		m := sch(c.schema)
		names, always := jsonFields(c.typ)
		if got := sortedKeys(m["properties"].(map[string]any)); !slices.Equal(got, names) {
			t.Errorf("schema %s has properties %q, the Go type %T has %q", c.schema, got, c.typ, names)
		}
		if c.resp {
			var req []string
			for _, r := range asList(m["required"]) {
				req = append(req, r.(string))
			}
			sort.Strings(req)
			if !slices.Equal(req, always) {
				t.Errorf("schema %s requires %q, %T always writes %q", c.schema, req, c.typ, always)
			}
		}
	}
	inner := prop(sch("Error"), "error")
	if names, _ := jsonFields(apiError{}); !slices.Equal(sortedKeys(inner["properties"].(map[string]any)), names) {
		t.Errorf("Error.error properties differ from apiError's %q", names)
	}

	enum := func(v any) []string {
		var out []string
		for _, e := range asList(s.deref(v)["enum"]) {
			if e != nil { // a nullable member's
				out = append(out, e.(string))
			}
		}
		sort.Strings(out)
		return out
	}
	sorted := func(xs ...string) []string { sort.Strings(xs); return xs }
	var launchStates []string
	for _, ls := range store.LaunchStates {
		launchStates = append(launchStates, string(ls))
	}
	launchStates = sorted(launchStates...)
	// Batch.launch_states has a member per launch state, each always there.
	counts := prop(sch("Batch"), "launch_states")
	var countsRequired []string
	for _, r := range asList(counts["required"]) {
		countsRequired = append(countsRequired, r.(string))
	}
	for _, c := range []struct {
		what string
		got  []string
		want []string
	}{
		{"JobStatus", enum(sch("JobStatus")), sorted(string(queue.Enqueued), string(queue.Duplicate), string(queue.AlreadyLaunched), string(queue.DeadLettered), string(queue.Conflict))},
		{"JobRecord.state", enum(prop(sch("JobRecord"), "state")), sorted(string(store.StateQueued), string(store.StateRunning), string(store.StateRetrying), string(store.StateSucceeded), string(store.StateDeadLettered))},
		{"Attempt.outcome", enum(prop(sch("Attempt"), "outcome")), sorted(store.AttemptSucceeded, store.AttemptRetryable, store.AttemptTerminal, store.AttemptThrottled, store.AttemptLost)},
		{"Outcome.result", enum(prop(sch("Outcome"), "result")), sorted(string(ops.Retried), string(ops.Deleted))},
		{"Error.code", enum(prop(inner, "code")), errorCodesInSource(t)},
		{"LaunchState", enum(sch("LaunchState")), launchStates},
		{"JobRecord.launch_state", enum(prop(sch("JobRecord"), "launch_state")), launchStates},
		{"LaunchFollow.launch_state", enum(prop(sch("LaunchFollow"), "launch_state")), launchStates},
		{"LaunchFollow.ended", enum(prop(sch("LaunchFollow"), "ended")), sorted(store.FollowFinal, store.FollowExpired)},
		{"Batch.launch_states members", sortedKeys(counts["properties"].(map[string]any)), launchStates},
		{"Batch.launch_states required", sorted(countsRequired...), launchStates},
		{"Priority", enum(s.doc["components"].(map[string]any)["parameters"].(map[string]any)["Priority"].(map[string]any)["schema"]),
			sorted(string(ops.PriorityHigh), string(ops.PriorityDefault), string(ops.PriorityLow))},
		{"Job.priority", enum(prop(sch("Job"), "priority")),
			sorted("", string(launch.PriorityHigh), string(launch.PriorityDefault), string(launch.PriorityLow))},
		{"AccountQueues.pending_by_priority", sortedKeys(prop(sch("AccountQueues"), "pending_by_priority")["properties"].(map[string]any)),
			sorted(string(ops.PriorityHigh), string(ops.PriorityDefault), string(ops.PriorityLow))},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s enum %q, the code has %q", c.what, c.got, c.want)
		}
	}
}

// jsonFields returns the JSON member names of a struct type, and those
// written always (without omitempty or omitzero), both sorted.
func jsonFields(v any) (names, always []string) {
	rt := reflect.TypeOf(v)
	for i := 0; i < rt.NumField(); i++ {
		tag := rt.Field(i).Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !rt.Field(i).IsExported() {
			continue
		}
		if name == "" {
			name = rt.Field(i).Name
		}
		names = append(names, name)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			always = append(always, name)
		}
	}
	sort.Strings(names)
	sort.Strings(always)
	return names, always
}

// errorCodesInSource collects the error codes the API's handlers write: the
// third argument of every writeError call in the API's source files.
func errorCodesInSource(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range []string{"server.go", "producer.go", "operator.go", "openapi.go", "throttled.go"} {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); ok && (id.Name == "writeError" || id.Name == "writeErrorID") && len(call.Args) >= 3 {
				lit, ok := call.Args[2].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("%s: %s with a code that is not a string literal", fset.Position(call.Pos()), id.Name)
					return true
				}
				code, _ := strconv.Unquote(lit.Value)
				seen[code] = true
			}
			return true
		})
	}
	return sortedKeys(seen)
}

// TestOpenAPIJobSchemaMirrorsValidation checks that the document's Job
// schema accepts exactly the jobs launch.Parse accepts, over jobs that probe
// every rule: required fields, types, null, blank text, lengths at and over
// the limits, patterns, list sizes and unknown members. (Not covered: the
// 64 KiB bound on a whole job, duplicate members and non-ASCII white space,
// which JSON Schema cannot express or Go's RE2 \S treats differently.)
func TestOpenAPIJobSchemaMirrorsValidation(t *testing.T) {
	s := apiSpec(t)
	type job = map[string]any
	base := func() job { return launchtest.Map("48900") }
	ln := func(j job) job { return j["launch"].(job) }
	var cases []struct {
		name string
		body []byte
	}
	add := func(name string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name string
			body []byte
		}{name, b})
	}
	add("sample", base())
	minimal := base()
	delete(minimal, "regions")
	for _, f := range []string{"video_uris", "screenshot_uris", "launch_name"} {
		delete(ln(minimal), f)
	}
	add("minimal", minimal)
	for _, v := range []any{"order-1", "A", "a.b_c:d@e-f", "", nil, "-x", "a b", "ä", "a/b", "a+b", "a\nb", "x.", "1:2@3", strings.Repeat("x", launch.MaxIDLen), strings.Repeat("x", launch.MaxIDLen+1), 5} {
		j := base()
		j["id"] = v
		add(fmt.Sprintf("id=%v", v), j)
	}
	long := strings.Repeat("ü", launch.MaxTextLen)
	for _, f := range []string{"optin_description", "trigger_description", "interactions_description", "optout_description", "agent_access_instructions", "agent_no"} {
		j := base()
		delete(ln(j), f)
		add(f+" missing", j)
		for _, v := range []any{"", " ", "\t\n", nil, 5, true, []any{"x"}, long, long + "x", " x "} {
			j := base()
			ln(j)[f] = v
			add(fmt.Sprintf("%s=%.10v", f, v), j)
		}
	}
	for _, f := range []string{"provider_launch_id", "launch_name"} {
		for _, v := range []any{"", " ", nil, 5, long, long + "x", "x"} {
			j := base()
			ln(j)[f] = v
			add(fmt.Sprintf("%s=%.10v", f, v), j)
		}
	}
	for _, v := range []any{"", "1", "0042", "9999", "12345", "a", "1.0", "-1", " 1", nil, 1} {
		j := base()
		ln(j)["launch_type"] = v
		add(fmt.Sprintf("launch_type=%v", v), j)
	}
	uri := "https://example.com/" + strings.Repeat("p", launch.MaxURILen-len("https://example.com/"))
	many := func(n int) []any {
		l := make([]any, n)
		for i := range l {
			l[i] = "https://example.com/" + strconv.Itoa(i)
		}
		return l
	}
	for _, f := range []string{"video_uris", "screenshot_uris"} {
		for _, v := range []any{nil, []any{}, []any{"http://x"}, []any{"HTTPS://x.y/z?q=1#f"}, []any{"ftp://x"},
			[]any{"example.com/x"}, []any{"http://a b"}, []any{"http://"}, []any{""}, []any{nil}, []any{5}, "http://x",
			[]any{uri}, []any{uri + "p"}, many(launch.MaxURIs), many(launch.MaxURIs + 1)} {
			j := base()
			ln(j)[f] = v
			add(fmt.Sprintf("%s=%.40v", f, v), j)
		}
	}
	regions := func(n int) []any {
		l := make([]any, n)
		for i := range l {
			l[i] = job{"region": "r" + strconv.Itoa(i)}
		}
		return l
	}
	for _, v := range []any{nil, []any{}, []any{job{}}, []any{job{"region": "IN"}}, []any{job{"region": " "}},
		[]any{job{"region": "IN", "region_id": ""}}, []any{job{"region": "IN", "region_id": nil}},
		[]any{job{"region": "IN", "region_id": "8346A250-D7A9-47DC-8202-A8B1C2D3E4E8"}},
		[]any{job{"region": "IN", "region_id": "8346a250d7a947dc8202a8b1c2d3e4e8"}},
		[]any{job{"region": "IN", "region_id": "x"}}, []any{job{"region": "IN", "zone": "x"}},
		[]any{job{"region": "IN", "region_id": "g346a250-d7a9-47dc-8202-a8b1c2d3e4e8"}},
		[]any{job{"region": "IN", "region_id": "8346a250-d7a9-47dc-8202-a8b1c2d3e4e8a"}},
		[]any{job{"region": "IN", "region_id": " 8346a250-d7a9-47dc-8202-a8b1c2d3e4e8"}},
		[]any{job{"region": "IN", "region_id": "8346a250-d7a9-47dc-8202a-8b1c2d3e4e8"}},
		[]any{nil}, []any{"IN"}, "IN", job{"region": "IN"}, regions(launch.MaxRegions), regions(launch.MaxRegions + 1)} {
		j := base()
		j["regions"] = v
		add(fmt.Sprintf("regions=%.40v", v), j)
	}
	for _, v := range []any{"high", "default", "low", "", nil, "High", " low", "urgent", 1} {
		j := base()
		j["priority"] = v
		add(fmt.Sprintf("priority=%v", v), j)
	}
	j := base()
	j["extra"] = 1
	add("unknown member", j)
	j = base()
	ln(j)["optin_desription"] = "x"
	add("unknown launch member", j)
	for _, v := range []any{nil, []any{}, "x", job{}} {
		j := base()
		j["launch"] = v
		add(fmt.Sprintf("launch=%v", v), j)
	}
	add("array", []any{})
	add("string", "x")
	add("null", nil)
	add("empty object", job{})

	valid := 0
	for _, c := range cases {
		v, err := decodeJSON(c.body)
		if err != nil {
			t.Fatal(err)
		}
		docErrs := s.validate(map[string]any{"$ref": "#/components/schemas/Job"}, v, "job")
		_, parseErr := launch.Parse(c.body)
		if (len(docErrs) == 0) != (parseErr == nil) {
			t.Errorf("%s: the document says %q, launch.Parse says %v\n%.300s", c.name, docErrs, parseErr, c.body)
		}
		if parseErr == nil {
			valid++
		}
	}
	if valid < 20 || valid > len(cases)-60 {
		t.Errorf("%d of %d cases valid: the cases do not probe both sides", valid, len(cases))
	}
}

// TestOpenAPIStatusCoverage makes every route answer every status the
// document gives it, so that each documented answer is checked against a
// real one (the checks are in env.req), and fails on a documented status no
// scenario produces.
func TestOpenAPIStatusCoverage(t *testing.T) {
	t.Parallel()
	s := apiSpec(t)
	e, dead := newEnv(t), newDeadEnv(t)

	// What every route does without a token, with a wrong one, with too
	// many wrong ones from one address (429), and with Redis gone (500, or
	// 503 for /readyz).
	for i, o := range s.ops {
		target, body := samplePath(o.path), sampleRequest(t, o.key())
		e.do(o.method, target, "", body)
		from := fmt.Sprintf("198.51.100.%d:5000", i)
		for range throttle.DefaultFree + 1 {
			e.req(o.method, target, body, fromAddr, from, "Authorization", "Bearer wrong")
		}
		dead.do(o.method, target, adminToken, body)
	}

	// The rest, route by route.
	job := jobBody(t, "cov-1")
	id := derivedID(t, job)
	e.do("POST", "/v1/launches", prodToken, job)                                     // 201
	e.do("POST", "/v1/launches", prodToken, job)                                     // 200
	e.do("POST", "/v1/launches", prodToken, []byte(`{}`))                            // 400
	e.do("POST", "/v1/launches", prodToken, bytes.Repeat([]byte(" "), maxJobBody+1)) // 413
	own := launchtest.Map("cov-2")
	own["id"] = "cov-own"
	e.do("POST", "/v1/launches", prodToken, mustJSON(t, own))
	own["regions"] = nil
	e.do("POST", "/v1/launches", prodToken, mustJSON(t, own)) // 409

	e.do("POST", "/v1/launches:batch", prodToken, sampleRequest(t, "POST /v1/launches:batch")) // 200
	e.do("POST", "/v1/launches:batch", prodToken, []byte(`{"jobs": [{}]}`))                    // 400
	e.do("POST", "/v1/launches:batch", prodToken, mustJSON(t, map[string]any{"jobs": make([]any, MaxBatchJobs+1)}))

	e.do("GET", "/v1/launches/"+id, prodToken, nil)                    // 200
	e.do("GET", "/v1/launches/missing", prodToken, nil)                // 404
	e.do("GET", "/v1/launches?agent_no=cov-1&limit=5", prodToken, nil) // 200
	e.do("GET", "/v1/launches?limit=5", prodToken, nil)                // 400
	dead.do("GET", "/v1/launches?agent_no=cov-1", adminToken, nil)     // 500

	var ans batchAnswer
	e.do("POST", "/v1/launches:batch", prodToken, mustJSON(t, map[string]any{"name": "coverage", "jobs": []any{launchtest.Map("cov-b")}})).into(t, &ans)
	e.do("GET", "/v1/batches?limit=1", prodToken, nil)      // 200
	e.do("GET", "/v1/batches?limit=0", prodToken, nil)      // 400
	e.do("GET", "/v1/batches/"+ans.BatchID, prodToken, nil) // 200
	e.do("GET", "/v1/batches/missing", prodToken, nil)      // 404

	now := time.Now()
	for i, uncertain := range []bool{false, false, true, false, false} {
		e.deadLetter(fmt.Sprintf("cov-dl-%d", i), "RCS904", now.Add(-time.Duration(i)*time.Second), uncertain)
	}
	e.do("GET", "/v1/deadletters?limit=2&code=RCS904&since=1h", adminToken, nil) // 200
	e.do("GET", "/v1/deadletters?limit=0", adminToken, nil)                      // 400
	e.do("GET", "/v1/deadletters/cov-dl-0", adminToken, nil)                     // 200
	e.do("GET", "/v1/deadletters/missing", adminToken, nil)                      // 404
	e.do("POST", "/v1/deadletters/cov-dl-0/retry", adminToken, nil)              // 200
	e.do("POST", "/v1/deadletters/cov-dl-0/retry", adminToken, nil)              // 409
	e.do("POST", "/v1/deadletters/cov-dl-2/retry", adminToken, nil)              // 409 uncertain
	e.do("POST", "/v1/deadletters/missing/retry", adminToken, nil)               // 404
	e.do("DELETE", "/v1/deadletters/cov-dl-1", adminToken, nil)                  // 200
	e.do("DELETE", "/v1/deadletters/cov-dl-0", adminToken, nil)                  // 409
	e.do("DELETE", "/v1/deadletters/missing", adminToken, nil)                   // 404
	for _, p := range []string{"/v1/deadletters:retry", "/v1/deadletters:delete"} {
		e.do("POST", p, adminToken, []byte(`{"code": "RCS904"}`))              // 200
		e.do("POST", p, adminToken, []byte(`{}`))                              // 400
		e.do("POST", p, adminToken, bytes.Repeat([]byte(" "), maxAdminBody+1)) // 413
	}
	// Followed launches: records with launch_follow in each form (polling,
	// a failed last poll, ended final, ended expired) and a batch with
	// launch states, each answer checked against the document.
	followed := store.NewBatchID(now)
	if err := e.Store.CreateBatch(ctxT(t), followed, "followed", now); err != nil {
		t.Fatal(err)
	}
	followedJob(t, e.Store, followed, "cov-f-1", "cov-f1", now, false, pollPending, pollLaunched)
	followedJob(t, e.Store, followed, "cov-f-2", "cov-f2", now, false, pollPending, pollTimeout)
	followedJob(t, e.Store, followed, "cov-f-3", "cov-f3", now, true, pollGateway)
	followedJob(t, e.Store, followed, "cov-f-4", "cov-f4", now, false)
	for _, id := range []string{"cov-f-1", "cov-f-2", "cov-f-3", "cov-f-4"} {
		e.do("GET", "/v1/launches/"+id, prodToken, nil) // 200
	}
	e.do("GET", "/v1/launches?agent_no=cov-f2", prodToken, nil) // 200
	e.do("GET", "/v1/batches/"+followed, prodToken, nil)        // 200
	e.do("GET", "/v1/stats", adminToken, nil)                   // 200
	e.do("GET", "/readyz", "", nil)                             // 200

	// A bad {id} on every route that takes one, a body not sent as JSON on
	// every route that takes one, and a batch beyond the server's bounds.
	for _, o := range s.ops {
		if strings.Contains(o.path, "{id}") {
			e.do(o.method, strings.ReplaceAll(o.path, "{id}", "bad%20id"), adminToken, sampleRequest(t, o.key())) // 400
		}
		if body := sampleRequest(t, o.key()); body != nil {
			e.req(o.method, o.path, body, "Authorization", "Bearer "+adminToken, "Content-Type", "text/plain") // 415
		}
	}
	for {
		release, ok := e.api.batches.take(0)
		if !ok {
			break
		}
		defer release()
	}
	e.do("POST", "/v1/launches:batch", prodToken, sampleRequest(t, "POST /v1/launches:batch")) // 429

	seen := map[string]bool{}
	for k := range e.seen {
		seen[k] = true
	}
	for k := range dead.seen {
		seen[k] = true
	}
	for _, o := range s.ops {
		for _, code := range o.statuses() {
			key := o.key() + " " + code
			if seen[key] {
				continue
			}
			if mountedElsewhere[o.key()] && !seen[o.key()+" 401"] {
				continue // not mounted by New: TestOpenAPIRoutes logged it
			}
			t.Errorf("documented %s: no real answer checked against it", key)
		}
	}
}
