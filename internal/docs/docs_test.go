package docs

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/rcslaunch/rcslaunch/internal/config"
)

// root is the repository, seen from this package's directory.
const root = "../.."

// pages are the Markdown files whose links must resolve: the README, the
// benchmarks and every page of docs/.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append([]string{filepath.Join(root, "README.md"), filepath.Join(root, "BENCHMARKS.md")}, docs...)
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	fence    = regexp.MustCompile("^\\s*(```|~~~)")
	codeSpan = regexp.MustCompile("`[^`\n]*`")
	// An inline link's target, with an optional title.
	linkTarget = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	heading    = regexp.MustCompile(`^#{1,6}\s+(.+?)\s*#*\s*$`)
	inlineLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// prose returns md's lines outside fenced code blocks, with code spans
// removed, so that an example such as `[x](y)` is not taken for a link;
// each line keeps its number (1-based) for messages.
func prose(md string) map[int]string {
	out := map[int]string{}
	inFence := false
	for i, line := range strings.Split(md, "\n") {
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if !inFence {
			out[i+1] = codeSpan.ReplaceAllString(line, "")
		}
	}
	return out
}

// anchors returns the anchors GitHub gives md's headings: lower case,
// punctuation dropped, spaces as hyphens, a repeat suffixed -1, -2, ...
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, line := range prose(md) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := slug(m[1])
		if n := seen[a]; n > 0 {
			seen[a]++
			a = a + "-" + string(rune('0'+n))
		} else {
			seen[a] = 1
		}
		out[a] = true
	}
	return out
}

func slug(text string) string {
	text = inlineLink.ReplaceAllString(text, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), unicode.Is(unicode.Mn, r), r == '_', r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestDocsLinksResolve: every relative link in the README and docs/ names a
// file or directory of the repository, and its anchor, if any, a heading
// of the Markdown file it points to.
func TestDocsLinksResolve(t *testing.T) {
	var checked int
	for _, page := range pages(t) {
		md := read(t, page)
		name, _ := filepath.Rel(root, page)
		for n, line := range prose(md) {
			for _, m := range linkTarget.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				path, anchor, _ := strings.Cut(target, "#")
				file := page
				if path != "" {
					file = filepath.Join(filepath.Dir(page), path)
					if rel, err := filepath.Rel(root, file); err != nil || strings.HasPrefix(rel, "..") {
						t.Errorf("%s:%d: link %q leaves the repository", name, n, target)
						continue
					}
					if _, err := os.Stat(file); err != nil {
						t.Errorf("%s:%d: link %q: no such file", name, n, target)
						continue
					}
				}
				if anchor == "" {
					continue
				}
				if !strings.HasSuffix(file, ".md") {
					t.Errorf("%s:%d: link %q: an anchor into a file that is not Markdown", name, n, target)
					continue
				}
				if !anchors(read(t, file))[anchor] {
					t.Errorf("%s:%d: link %q: %s has no heading with anchor #%s", name, n, target, filepath.Base(file), anchor)
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("checked only %d relative links; is the link pattern still right?", checked)
	}
}

// TestDocsReachableFromReadme: the reference lives in docs/, so each of its
// pages must be linked from the README.
func TestDocsReachableFromReadme(t *testing.T) {
	readme := read(t, filepath.Join(root, "README.md"))
	linked := map[string]bool{}
	for _, line := range prose(readme) {
		for _, m := range linkTarget.FindAllStringSubmatch(line, -1) {
			path, _, _ := strings.Cut(m[1], "#")
			linked[filepath.Clean(path)] = true
		}
	}
	for _, page := range pages(t)[2:] {
		rel, _ := filepath.Rel(root, page)
		if !linked[rel] {
			t.Errorf("README.md does not link %s", rel)
		}
	}
}

// TestReadmeFirstRead: the README opens with the two commands a newcomer
// needs (the demo, needing no credentials, and the tests) and stays short
// enough to read first; the reference belongs in docs/.
func TestReadmeFirstRead(t *testing.T) {
	readme := read(t, filepath.Join(root, "README.md"))
	lines := strings.Split(strings.TrimSuffix(readme, "\n"), "\n")
	if len(lines) >= 250 {
		t.Errorf("README.md has %d lines; keep it under 250 and move reference to docs/", len(lines))
	}
	// The first fenced block, which must come before any section.
	var block []string
	inFence := false
	for _, line := range lines {
		if strings.HasPrefix(line, "## ") && block == nil {
			break
		}
		if fence.MatchString(line) {
			if inFence {
				break
			}
			inFence = true
			block = []string{}
			continue
		}
		if inFence && strings.TrimSpace(line) != "" {
			block = append(block, line)
		}
	}
	if len(block) != 2 || !strings.Contains(block[0], " demo") || !strings.HasPrefix(block[1], "make test") {
		t.Errorf("README.md must open with exactly two commands, the demo and `make test`; got %q", block)
	}
	for _, want := range []string{"## Try it locally", "rcslaunch sim", "rcslaunch worker", "enqueue --file examples/"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md lacks %q (the try-it-locally recipe)", want)
		}
	}
}

// TestDocsConfigurationListsEveryVariable: every variable the binary reads
// has its row in docs/configuration.md's table, and the table names none
// it does not read.
func TestDocsConfigurationListsEveryVariable(t *testing.T) {
	page := read(t, filepath.Join(root, "docs", "configuration.md"))
	documented := map[string]bool{}
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for _, v := range regexp.MustCompile("`([A-Z][A-Z0-9_]+)`").FindAllStringSubmatch(first, -1) {
			documented[v[1]] = true
		}
	}
	ct := reflect.TypeOf(config.Config{})
	read := map[string]bool{}
	for i := 0; i < ct.NumField(); i++ {
		if v := ct.Field(i).Tag.Get("envconfig"); v != "" {
			read[v] = true
			if !documented[v] {
				t.Errorf("docs/configuration.md has no row for %s", v)
			}
		}
	}
	for v := range documented {
		if !read[v] {
			t.Errorf("docs/configuration.md documents %s, which the binary does not read", v)
		}
	}
}
