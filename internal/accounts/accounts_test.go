package accounts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rcslaunch/rcslaunch/internal/secret"
)

// testKey is distinctive enough that finding it in an error means the error
// leaked it.
const testKey = "kZ9-TEST-KEY-q7Wx"

var defaults = Defaults{Pod: "in", Rate: 10, Burst: 20, MaxInFlight: 30, RetryMax: 8}

// testEnv holds the key in KEY_A and KEY_B; NL and CTRL hold it spoiled.
func testEnv(name string) string {
	switch name {
	case "KEY_A", "KEY_B":
		return testKey
	case "NL":
		return testKey + "\n"
	case "CTRL":
		return testKey + "\x00x"
	case "BLANK":
		return "  "
	}
	return ""
}

// testFiles are the key files under dir /etc/rcs, where the accounts file is.
func testFiles(path string) ([]byte, error) {
	switch path {
	case "/etc/rcs/key.txt", "/keys/abs.txt":
		return []byte(testKey + "\n"), nil
	case "/etc/rcs/crlf.txt":
		return []byte(testKey + "\r\n"), nil
	case "/etc/rcs/empty.txt":
		return []byte("\n"), nil
	case "/etc/rcs/two-lines.txt":
		return []byte(testKey + "\n\n"), nil
	case "/etc/rcs/ctrl.txt":
		return []byte(testKey + "\x1b[0m"), nil
	case "/etc/rcs/huge.txt":
		return []byte(strings.Repeat(testKey, 1000)), nil
	case "/etc/rcs/secret-dir":
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("is a directory")}
	}
	return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
}

const name = "/etc/rcs/accounts.yaml"

func parse(data string) ([]Account, error) {
	return Parse(name, []byte(data), defaults, testEnv, testFiles)
}

func TestParseDefaultsAndFormats(t *testing.T) {
	yamlDoc := `
# two accounts
- sid: HX12
  api_key_env: KEY_A
- sid: Other_2
  pod: na
  api_key_file: key.txt
  rate: 2.5
  burst: 5
  max_in_flight: 3
  retry_max: 0
`
	jsonDoc := ` [
 {"sid": "HX12", "api_key_env": "KEY_A"},
 {"sid": "Other_2", "pod": "na", "api_key_file": "key.txt", "rate": 2.5, "burst": 5, "max_in_flight": 3, "retry_max": 0}
]`
	want := []Account{
		{SID: "HX12", Pod: "in", APIKey: testKey, Rate: 10, Burst: 20, MaxInFlight: 30, RetryMax: 8},
		{SID: "Other_2", Pod: "na", APIKey: testKey, Rate: 2.5, Burst: 5, MaxInFlight: 3, RetryMax: 0},
	}
	for format, doc := range map[string]string{"YAML": yamlDoc, "JSON": jsonDoc} {
		got, err := parse(doc)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", format, got, want)
		}
	}
}

// TestDocsExample: the example in docs/configuration.md is accepted.
func TestDocsExample(t *testing.T) {
	page, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(page), "### Many accounts")
	_, rest, _ = strings.Cut(rest, "```yaml\n")
	example, _, found := strings.Cut(rest, "```")
	if !found {
		t.Fatal("docs/configuration.md has no YAML example of ACCOUNTS_FILE")
	}
	env := func(name string) string { return map[string]string{"HX12_API_KEY": testKey}[name] }
	files := func(path string) ([]byte, error) {
		if path == "/etc/rcs/keys/brand2.key" {
			return []byte(testKey + "\n"), nil
		}
		return testFiles(path)
	}
	got, err := Parse(name, []byte(example), defaults, env, files)
	if err != nil || len(got) != 2 {
		t.Errorf("the documented example: %v, %+v", err, got)
	}
}

func TestParseBOM(t *testing.T) {
	if _, err := parse("\ufeff[{\"sid\": \"A\", \"api_key_env\": \"KEY_A\"}]"); err != nil {
		t.Error(err)
	}
}

func TestParseKeySources(t *testing.T) {
	for _, file := range []string{"key.txt", "crlf.txt", "/keys/abs.txt"} {
		got, err := parse("- {sid: A, api_key_file: " + file + "}")
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got[0].APIKey.Reveal() != testKey {
			t.Errorf("%s: key not read as written (trailing newline kept?)", file)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "accounts.json")
	if err := os.WriteFile(path, []byte(`[{"sid": "A", "api_key_file": "key"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, defaults, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].APIKey.Reveal() != testKey {
		t.Errorf("Load = %+v", got)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"), defaults, testEnv)
	if want := "ACCOUNTS_FILE " + filepath.Join(dir, "missing.yaml") + ": no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("Load(missing) = %v, want %s", err, want)
	}
}

func TestParseErrors(t *testing.T) {
	const pre = "ACCOUNTS_FILE " + name + ": "
	ok := "{sid: OK1, api_key_env: KEY_A}"
	for _, tc := range []struct {
		doc  string
		d    *Defaults
		want []string // each an error line, after pre
	}{
		{"", nil, []string{"empty; want a list of accounts"}},
		{"# nothing\n", nil, []string{"empty; want a list of accounts"}},
		{"[]", nil, []string{"lists no accounts"}},
		{"[ ]\n", nil, []string{"lists no accounts"}},
		{`{"accounts": []}`, nil, []string{"want a list of accounts, got an object"}},
		{"accounts: []", nil, []string{"want a list of accounts, got an object"}},
		{`[{"sid": "A", "api_key_env": "KEY_A"}] x`, nil, []string{"not valid JSON: more after the list of accounts"}},
		// The offset is encoding/json's: 13 on Go 1.26, 14 on Go 1.27.
		{`[{"sid": "A",}]`, nil, []string{"not valid JSON at byte 1"}},
		{`[{"sid": "A"`, nil, []string{"not valid JSON: it ends early"}},
		{"- a\n- : b: c", nil, []string{"not valid YAML: "}},
		{"- " + ok + "\n---\n- " + ok, nil, []string{"want one YAML document, got more"}},
		{"- HX12", nil, []string{"account 1: want an object (sid, pod, api_key_env, api_key_file, rate, burst, max_in_flight, retry_max), got a string"}},
		{`[5]`, nil, []string{"account 1: want an object (sid, pod, api_key_env, api_key_file, rate, burst, max_in_flight, retry_max), got a number"}},
		// Unknown, misspelt and repeated fields.
		{"- {sid: A, api_key_env: KEY_A, rte: 5}", nil, []string{`account 1 (sid "A"): "rte": unknown field (want sid, pod, api_key_env, api_key_file, rate, burst, max_in_flight, retry_max)`}},
		{`[{"SID": "A", "api_key_env": "KEY_A"}]`, nil, []string{`account 1: "SID": unknown field`, "account 1: sid: is required"}},
		{`[{"sid": "A", "api_key_env": "KEY_A", "rate": 1, "rate": 2}]`, nil, []string{`account 1 (sid "A"): rate: given twice`}},
		{"- {sid: A, api_key_env: KEY_A, api_key: x}", nil, []string{`account 1 (sid "A"): "api_key": unknown field`}},
		// Wrong types.
		{"- {sid: 123, api_key_env: KEY_A}", nil, []string{"account 1: sid: want a string, got a whole number (quote it)"}},
		{`[{"sid": 123, "api_key_env": "KEY_A"}]`, nil, []string{"account 1: sid: want a string, got a whole number (quote it)"}},
		{`[{"sid": "A", "api_key_env": "KEY_A", "rate": "5"}]`, nil, []string{`account 1 (sid "A"): rate: want a number, got a string`}},
		{"- {sid: A, api_key_env: KEY_A, burst: 1.5}", nil, []string{`account 1 (sid "A"): burst: want a whole number, got a number with a fraction`}},
		{`[{"sid": "A", "api_key_env": "KEY_A", "max_in_flight": 2.0}]`, nil, []string{`account 1 (sid "A"): max_in_flight: want a whole number, got a number with a fraction`}},
		{`[{"sid": "A", "api_key_env": "KEY_A", "retry_max": true}]`, nil, []string{`account 1 (sid "A"): retry_max: want a whole number, got true or false`}},
		{`[{"sid": "A", "api_key_env": "KEY_A", "pod": ["in"]}]`, nil, []string{`account 1 (sid "A"): pod: want a string, got a list`}},
		{`[{"sid": "A", "api_key_env": "KEY_A", "rate": null}]`, nil, []string{`account 1 (sid "A"): rate: null; leave the field out for the default`}},
		{"- {sid: A, api_key_env: KEY_A, rate: }", nil, []string{`account 1 (sid "A"): rate: null; leave the field out for the default`}},
		{`[{"sid": "A", "api_key_env": "KEY_A", "burst": 99999999999999999999}]`, nil, []string{`account 1 (sid "A"): burst: "99999999999999999999" is out of range`}},
		{"- {sid: A, api_key_env: KEY_A, burst: 99999999999999999999}", nil, []string{`account 1 (sid "A"): burst: out of range`}},
		// SIDs.
		{"- {api_key_env: KEY_A}", nil, []string{"account 1: sid: is required"}},
		{`- {sid: "", api_key_env: KEY_A}`, nil, []string{`account 1 (sid ""): sid: empty`}},
		{`- {sid: "HX/12", api_key_env: KEY_A}`, nil, []string{`account 1 (sid "HX/12"): sid: "HX/12" must contain only letters, digits, '-' and '_'`}},
		{`- {sid: "HX 12", api_key_env: KEY_A}`, nil, []string{`account 1 (sid "HX 12"): sid: "HX 12" must contain only`}},
		{"- {sid: " + strings.Repeat("x", 129) + ", api_key_env: KEY_A}", nil, []string{`account 1 (sid "` + strings.Repeat("x", 40) + `…"): sid: 129 bytes long, more than the 128 allowed`}},
		{"- {sid: HX12, api_key_env: KEY_A}\n- " + ok + "\n- {sid: HX12, api_key_env: KEY_B}", nil, []string{`account 3 (sid "HX12"): sid: also account 1's; an SID may be listed once`}},
		// Pods.
		{"- {sid: A, api_key_env: KEY_A, pod: eu}", nil, []string{`account 1 (sid "A"): pod: "eu" is unknown; want "in" or "na"`}},
		{"- {sid: A, api_key_env: KEY_A}", &Defaults{Rate: 1, Burst: 1, MaxInFlight: 1}, []string{`account 1 (sid "A"): pod: empty; want "in" or "na" (left out, so the environment's default)`}},
		// Limits.
		{"- {sid: HX12, api_key_env: KEY_A, rate: 0}", nil, []string{`account 1 (sid "HX12"): rate: must be positive, got 0`}},
		{"- {sid: HX12, api_key_env: KEY_A, rate: -1}", nil, []string{`account 1 (sid "HX12"): rate: must be positive, got -1`}},
		{"- {sid: HX12, api_key_env: KEY_A, rate: .nan}", nil, []string{`account 1 (sid "HX12"): rate: must be positive, got NaN`}},
		{"- {sid: HX12, api_key_env: KEY_A, rate: .inf}", nil, []string{`account 1 (sid "HX12"): rate: must be finite, got +Inf`}},
		{"- {sid: HX12, api_key_env: KEY_A, burst: 0}", nil, []string{`account 1 (sid "HX12"): burst: must be at least 1, got 0`}},
		{"- {sid: HX12, api_key_env: KEY_A, max_in_flight: 0}", nil, []string{`account 1 (sid "HX12"): max_in_flight: must be at least 1, got 0`}},
		{"- {sid: HX12, api_key_env: KEY_A, max_in_flight: 3000000000}", nil, []string{`account 1 (sid "HX12"): max_in_flight: must be at most 2147483647, got 3000000000`}},
		{"- {sid: HX12, api_key_env: KEY_A, retry_max: -1}", nil, []string{`account 1 (sid "HX12"): retry_max: must not be negative, got -1`}},
		{"- {sid: A, api_key_env: KEY_A}", &Defaults{Pod: "in", Rate: 0, Burst: 1, MaxInFlight: 1},
			[]string{`account 1 (sid "A"): rate: must be positive, got 0 (left out, so the environment's default)`}},
		// Keys.
		{"- {sid: A}", nil, []string{`account 1 (sid "A"): api_key_env, api_key_file: one is required`}},
		{"- {sid: A, api_key_env: KEY_A, api_key_file: key.txt}", nil, []string{`account 1 (sid "A"): api_key_env, api_key_file: give one, not both`}},
		{"- {sid: A, api_key_env: UNSET}", nil, []string{`account 1 (sid "A"): api_key_env: $UNSET is unset or empty`}},
		{"- {sid: A, api_key_env: BLANK}", nil, []string{`account 1 (sid "A"): api_key_env: $BLANK is unset or empty`}},
		{`- {sid: A, api_key_env: ""}`, nil, []string{`account 1 (sid "A"): api_key_env: empty; want the name of an environment variable`}},
		{"- {sid: A, api_key_env: NL}", nil, []string{`account 1 (sid "A"): api_key_env: $NL holds a control character (a stray newline?)`}},
		{"- {sid: A, api_key_env: CTRL}", nil, []string{`account 1 (sid "A"): api_key_env: $CTRL holds a control character`}},
		{"- {sid: A, api_key_env: 5}", nil, []string{`account 1 (sid "A"): api_key_env: want a string, got a whole number (quote it)`}},
		{"- {sid: A, api_key_file: missing.txt}", nil, []string{`account 1 (sid "A"): api_key_file: open /etc/rcs/missing.txt: file does not exist`}},
		{"- {sid: A, api_key_file: secret-dir}", nil, []string{`account 1 (sid "A"): api_key_file: read /etc/rcs/secret-dir: is a directory`}},
		{"- {sid: A, api_key_file: empty.txt}", nil, []string{`account 1 (sid "A"): api_key_file: "/etc/rcs/empty.txt" is empty`}},
		{`- {sid: A, api_key_file: ""}`, nil, []string{`account 1 (sid "A"): api_key_file: empty; want the path of a file holding the key`}},
		{"- {sid: A, api_key_file: two-lines.txt}", nil, []string{`account 1 (sid "A"): api_key_file: "/etc/rcs/two-lines.txt" holds a control character`}},
		{"- {sid: A, api_key_file: ctrl.txt}", nil, []string{`account 1 (sid "A"): api_key_file: "/etc/rcs/ctrl.txt" holds a control character`}},
		{"- {sid: A, api_key_file: huge.txt}", nil, []string{`account 1 (sid "A"): api_key_file: "/etc/rcs/huge.txt" holds 17000 bytes, more than the 4096 a key may have`}},
		// Every problem at once, across accounts.
		{"- " + ok + "\n- {sid: HX12, api_key_env: UNSET, rate: 0, burst: 0, pod: xx}\n- {sid: B/C, api_key_file: missing.txt, retry_max: -2}", nil, []string{
			`account 2 (sid "HX12"): pod: "xx" is unknown`,
			`account 2 (sid "HX12"): api_key_env: $UNSET is unset or empty`,
			`account 2 (sid "HX12"): rate: must be positive, got 0`,
			`account 2 (sid "HX12"): burst: must be at least 1, got 0`,
			`account 3 (sid "B/C"): sid: "B/C" must contain only`,
			`account 3 (sid "B/C"): api_key_file: open /etc/rcs/missing.txt`,
			`account 3 (sid "B/C"): retry_max: must not be negative, got -2`,
		}},
	} {
		d := defaults
		if tc.d != nil {
			d = *tc.d
		}
		got, err := Parse(name, []byte(tc.doc), d, testEnv, testFiles)
		if err == nil {
			t.Errorf("%q: no error, got %+v", tc.doc, got)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(tc.want) {
			t.Errorf("%q: %d errors, want %d:\n%v", tc.doc, len(lines), len(tc.want), err)
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(lines[i], pre+w) {
				t.Errorf("%q: error %d:\n got %s\nwant %s…", tc.doc, i+1, lines[i], pre+w)
			}
		}
		if secret.String(testKey).In(err.Error()) {
			t.Errorf("%q: error holds the key: %v", tc.doc, err)
		}
	}
}

// TestKeyNeverPrinted: an Account, alone or in a list, prints without its
// key through every fmt verb.
func TestKeyNeverPrinted(t *testing.T) {
	got, err := parse("- {sid: A, api_key_env: KEY_A}\n- {sid: B, api_key_file: key.txt}")
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{got, got[0], &got[1]} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, testKey) || secret.String(testKey).In(s) {
				t.Errorf("%s of %T prints the key: %s", verb, v, s)
			}
		}
	}
}

func TestDiff(t *testing.T) {
	a := Account{SID: "A", Pod: "in", APIKey: "k1", Rate: 1, Burst: 1, MaxInFlight: 1}
	b := Account{SID: "B", Pod: "in", APIKey: "k2", Rate: 1, Burst: 1, MaxInFlight: 1}
	c := Account{SID: "C", Pod: "na", APIKey: "k3", Rate: 1, Burst: 1, MaxInFlight: 1}
	rekeyed := b
	rekeyed.APIKey = "k2-new"
	faster := c
	faster.Rate = 2
	d := Account{SID: "D", Pod: "na", APIKey: "k4", Rate: 1, Burst: 1, MaxInFlight: 1}

	for _, tc := range []struct {
		prev, next              []Account
		added, removed, changed []string
	}{
		{nil, nil, nil, nil, nil},
		{nil, []Account{b, a}, []string{"A", "B"}, nil, nil},
		{[]Account{a, b}, nil, nil, []string{"A", "B"}, nil},
		{[]Account{a, b, c}, []Account{c, b, a}, nil, nil, nil},
		{[]Account{a, b, c}, []Account{d, rekeyed, faster}, []string{"D"}, []string{"A"}, []string{"B", "C"}},
	} {
		added, removed, changed := Diff(tc.prev, tc.next, func(a Account) string { return a.SID })
		if !reflect.DeepEqual(added, tc.added) || !reflect.DeepEqual(removed, tc.removed) || !reflect.DeepEqual(changed, tc.changed) {
			t.Errorf("Diff(%v, %v) = %v, %v, %v; want %v, %v, %v", tc.prev, tc.next, added, removed, changed, tc.added, tc.removed, tc.changed)
		}
	}
}
