package secret_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rcslaunch/rcslaunch/internal/secret"
	"github.com/rcslaunch/rcslaunch/internal/secret/secrettest"
)

func TestRedactSpellings(t *testing.T) {
	s := secret.String(testKey)
	for name, spell := range secrettest.Spellings {
		echo := spell(testKey)
		text := "api-key: " + echo + ", again: " + echo + "."
		if !s.In(text) {
			t.Errorf("%s: In(%q) = false", name, text)
		}
		got := s.Redact(text)
		if want := "api-key: [redacted], again: [redacted]."; got != want {
			t.Errorf("%s: Redact(%q) = %q, want %q", name, text, got, want)
		}
		if secrettest.Holds(got, testKey) || s.In(got) {
			t.Errorf("%s: Redact(%q) = %q still holds the key", name, text, got)
		}
	}
	// An escape of an escape of a character is a spelling of it too.
	if got := s.Redact(`k=\\u006b3y5ecret0f7e3b8497f58a94e84b671a`); got != `k=[redacted]` {
		t.Errorf("Redact of a key escaped twice = %q", got)
	}
}

func TestRedactOtherText(t *testing.T) {
	s := secret.String(testKey)
	for _, text := range []string{
		"", "no key here", testKey[:len(testKey)-1], testKey[1:],
		testKey[:10] + "\xff" + testKey[10:], // broken by a byte that is no character
		testKey[:10] + " " + testKey[10:],
		testKey[:10] + `\u0000` + testKey[10:],
		`\u006` + testKey[1:], "%6" + testKey[1:], `\` + testKey[1:],
		"[redacted]",
	} {
		if s.In(text) {
			t.Errorf("In(%q) = true", text)
		}
		if got := s.Redact(text); got != text {
			t.Errorf("Redact(%q) = %q, want it unchanged", text, got)
		}
	}
	if secret.String("").In("anything") || secret.String("").Redact("anything") != "anything" {
		t.Error("the empty secret matched")
	}
}

// TestRedactUnicode checks keys beyond ASCII: case folding (the Kelvin sign
// is a 'k'), surrogate pairs and multi-byte percent escapes, and a key
// holding a backslash or a percent sign, which may be either literal or the
// start of an escape.
func TestRedactUnicode(t *testing.T) {
	for _, tc := range []struct{ key, text string }{
		{"kéy😀", "KÉY😀"},
		{"kéy😀", "\u212a\u00c9Y\U0001f600"},
		{"kéy😀", `k\u00e9y\ud83d\ude00`},
		{"kéy😀", `k%C3%A9y%F0%9F%98%80`},
		{`a\nb`, `a\nb`},
		{`a\nb`, `a\\nb`},
		{`a\nb`, `a\u005cnb`},
		{"a%41b", "a%41b"},
		{"a%41b", "a%2541b"},
		{`a"b`, `a\"b`},
	} {
		s := secret.String(tc.key)
		if got := s.Redact("<" + tc.text + ">"); got != "<[redacted]>" {
			t.Errorf("key %q: Redact(%q) = %q", tc.key, tc.text, got)
		}
	}
	if secret.String(`a\nb`).In("a\nb") {
		t.Error(`key a\nb found in text with a newline: one escape of it decoded twice`)
	}
}

func TestRedactJSON(t *testing.T) {
	s := secret.String(testKey)
	for _, tc := range []struct{ doc, want string }{
		{`{"code":"RCS904","message":"bad key \u006b3y5ecret0f7e3b8497f58a94e84b671a!"}`,
			`{"code":"RCS904","message":"bad key [redacted]!"}`},
		{` { "headers" : { "Api-Key" : "K3Y5ECRET0F7E3B8497F58A94E84B671A" } } `,
			` { "headers" : { "Api-Key" : "[redacted]" } } `},
		{`{"k3y5ecret0f7e3b8497f58a94e84b671a":1,"a":["x","k3y5\u0065cret0f7e3b8497f58a94e84b671a<&>\n"]}`,
			`{"[redacted]":1,"a":["x","[redacted]<&>\n"]}`},
		{`{"key":k3y5ecret0f7e3b8497f58a94e84b671a}`, ""}, // not JSON: see below
		{`["\\u006b3y5ecret0f7e3b8497f58a94e84b671a", 1e5, true, null]`, `["[redacted]", 1e5, true, null]`},
	} {
		if !json.Valid([]byte(tc.doc)) {
			continue
		}
		got := s.RedactJSON([]byte(tc.doc))
		if string(got) != tc.want {
			t.Errorf("RedactJSON(%s)\n= %s\nwant %s", tc.doc, got, tc.want)
		}
		if !json.Valid(got) || secrettest.HoldsJSON(got, testKey) {
			t.Errorf("RedactJSON(%s) = %s: invalid or still holding the key", tc.doc, got)
		}
	}
	// A key that is all digits can be echoed as a number.
	digits := secret.String("12345678901234567890")
	if got := digits.RedactJSON([]byte(`{"key":12345678901234567890}`)); string(got) != `{"key":"[redacted]"}` {
		t.Errorf("RedactJSON of a number = %s", got)
	}
	doc := []byte(`{"code":"RCS902","data":{"launch":{"agent_launch_id":"x"}}}`)
	if got := s.RedactJSON(doc); &got[0] != &doc[0] || !bytes.Equal(got, doc) {
		t.Errorf("RedactJSON without the key = %s, want doc itself", got)
	}
}

// FuzzRedact checks that whatever surrounds the key, and however it is
// spelled, Redact leaves none of it, and that RedactJSON keeps JSON valid
// without the key in any of its strings.
func FuzzRedact(f *testing.F) {
	f.Add("api-key: ", "", uint64(0))
	f.Add(`{"message":"bad key `, `"}`, uint64(0xaaaaaaaaaaaaaaaa))
	f.Add(`{"`, `":[1,2]}`, uint64(0x1111111111111111))
	f.Add(`["\`, `"]`, uint64(0x2222222222222222))
	f.Add(`{"a":"\u00`, `\"}`, uint64(0xffffffffffffffff))
	f.Add("<pre>%", "</pre>", uint64(0x9e3779b97f4a7c15))
	f.Add(`{"n":`, `}`, uint64(0))
	f.Fuzz(func(t *testing.T, prefix, suffix string, mask uint64) {
		s := secret.String(testKey)
		text := prefix + secrettest.Spell(testKey, mask) + suffix
		if !s.In(text) {
			t.Fatalf("In(%q) = false", text)
		}
		got := s.Redact(text)
		if secrettest.Holds(got, testKey) || s.In(got) {
			t.Fatalf("Redact(%q) = %q", text, got)
		}
		if !strings.Contains(got, secret.Redacted) {
			t.Fatalf("Redact(%q) = %q, without %s", text, got, secret.Redacted)
		}
		if !json.Valid([]byte(text)) {
			return
		}
		doc := s.RedactJSON([]byte(text))
		if !json.Valid(doc) || secrettest.HoldsJSON(doc, testKey) {
			t.Fatalf("RedactJSON(%s) = %s", text, doc)
		}
	})
}

// BenchmarkIn measures the scan of a typical answer and of the worst bodies
// found: a run of backslashes (each may start a nested escape) and the key
// all but its last character, over and over.
func BenchmarkIn(b *testing.B) {
	s := secret.String(testKey)
	for name, text := range map[string]string{
		"answer":      `{"code":"RCS902","message":"Agent launch request created successfully","data":{"launch":{"agent_launch_id":"1370ed9d-53ed-47ec-b150-e2a1b2c3d43d"}},"error":{}}`,
		"backslashes": strings.Repeat(`\`, 1<<20),
		"near misses": strings.Repeat(testKey[:len(testKey)-1], (1<<20)/len(testKey)),
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				s.In(text)
			}
		})
	}
}

// BenchmarkRedactJSON redacts a typical answer, which holds no key, through
// String (a Matcher made for the call) and through one Matcher made once,
// as a client does for every answer.
func BenchmarkRedactJSON(b *testing.B) {
	s := secret.String(testKey)
	answer := []byte(`{"code":"RCS902","message":"Agent launch request created successfully","data":{"launch":{"agent_launch_id":"1370ed9d-53ed-47ec-b150-e2a1b2c3d43d"}},"error":{}}`)
	b.Run("String", func(b *testing.B) {
		for b.Loop() {
			s.RedactJSON(answer)
		}
	})
	m := s.Matcher()
	b.Run("Matcher", func(b *testing.B) {
		for b.Loop() {
			m.RedactJSON(answer)
		}
	})
}

// typicalAnswer is a typical answer, which holds no key.
const typicalAnswer = `{"code":"RCS902","message":"Agent launch request created successfully","data":{"launch":{"agent_launch_id":"1370ed9d-53ed-47ec-b150-e2a1b2c3d43d"}},"error":{}}`

// TestClean checks that Clean finds the usual answer clean and any other
// spelling of the key not, and that it leaves what it cannot tell at a
// glance to Redact and RedactJSON.
func TestClean(t *testing.T) {
	for _, tc := range []struct {
		key, doc string
		clean    bool
	}{
		{testKey, typicalAnswer, true},
		{testKey, "", true},
		{testKey, `{"message":"bad key ` + testKey + `"}`, false},
		{testKey, `{"message":"bad key ` + strings.ToUpper(testKey) + `"}`, false},
		{testKey, `{"message":"bad key ` + "\u212a" + testKey[1:] + `"}`, false}, // the Kelvin sign
		{testKey, testKey[:20] + " " + testKey[20:], true},
		{testKey, `{"message":"bad key \u006b3y5ecret0f7e3b8497f58a94e84b671a"}`, false}, // an escape
		{testKey, typicalAnswer + "\\", false},
		{testKey, typicalAnswer + "%", false},
		{testKey, typicalAnswer + "\xff", false},
		{"", typicalAnswer, true},
		{`\n`, typicalAnswer, true}, // every spelling starts with '\' or '%'
		{"%41", typicalAnswer, true},
		// Invalid UTF-8 decodes to U+FFFD, so that this JSON string holds the key.
		{"k\ufffdy", "[\"k\xffy\"]", false},
	} {
		m := secret.String(tc.key).Matcher()
		if got := m.Clean([]byte(tc.doc)); got != tc.clean {
			t.Errorf("key %q: Clean(%q) = %v, want %v", tc.key, tc.doc, got, tc.clean)
		}
	}
	if got := secret.String("k\ufffdy").RedactJSON([]byte("[\"k\xffy\"]")); string(got) != `["[redacted]"]` {
		t.Errorf(`RedactJSON of a key with U+FFFD = %s, want ["[redacted]"]`, got)
	}
}

// FuzzClean checks that for any key and text, Clean tells no more than
// Redact and RedactJSON would: a clean text holds no spelling of the key, as
// text or as JSON, and both return it as it is; and that Clean tells all
// it can, finding clean any text without escapes or invalid UTF-8 that
// holds no spelling. The text holds the key spelled by secrettest.Spell
// with mask between prefix and suffix, when spelled is set, or else just
// prefix and suffix.
func FuzzClean(f *testing.F) {
	f.Add(testKey, typicalAnswer, "", uint64(0), false)
	f.Add(testKey, typicalAnswer[:40], typicalAnswer[40:], uint64(0), true)
	f.Add(testKey, typicalAnswer[:40], typicalAnswer[40:], uint64(0x1111111111111111)|1<<63, true)
	f.Add(testKey, `{"message":"bad key `, `"}`, uint64(0xaaaaaaaaaaaaaaaa), true)
	f.Add(testKey, `{"n":`, `}`, uint64(0), true)
	f.Add("12345", `{"n":`, `}`, uint64(0), true)
	f.Add("k\ufffdy", "[\"k\xffy\"]", "", uint64(0), false)
	f.Add("ſk", `["SK`, `"]`, uint64(0), false)
	f.Add(`a\nb`, `["a`, `b"]`, uint64(0), false)
	f.Add("", typicalAnswer, "", uint64(0), false)
	f.Fuzz(func(t *testing.T, key, prefix, suffix string, mask uint64, spelled bool) {
		text := prefix + suffix
		if spelled {
			text = prefix + secrettest.Spell(key, mask) + suffix
		}
		m := secret.String(key).Matcher()
		if !m.Clean([]byte(text)) {
			if !strings.ContainsAny(text, `\%`) && utf8.ValidString(text) && !m.In(text) {
				t.Fatalf("key %q: Clean(%q) = false, yet it holds no spelling", key, text)
			}
			return
		}
		if m.In(text) || m.Redact(text) != text {
			t.Fatalf("key %q: Clean(%q), yet Redact finds the key", key, text)
		}
		if json.Valid([]byte(text)) && string(m.RedactJSON([]byte(text))) != text {
			t.Fatalf("key %q: Clean(%s), yet RedactJSON finds the key", key, text)
		}
	})
}

// BenchmarkClean measures Clean on the answer of BenchmarkRedactJSON, whose
// cost (and that of checking that the answer is JSON) it saves.
func BenchmarkClean(b *testing.B) {
	m := secret.String(testKey).Matcher()
	doc := []byte(typicalAnswer)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if !m.Clean(doc) {
			b.Fatal("not clean")
		}
	}
}
