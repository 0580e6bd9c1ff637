package rdb

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// header splits a Lua file into its leading comment lines and the rest.
func header(src string) (head, body string) {
	lines := strings.SplitAfter(src, "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "--") {
		i++
	}
	return strings.Join(lines[:i], ""), strings.Join(lines[i:], "")
}

var indexed = regexp.MustCompile(`\b(KEYS|ARGV)\[(\d+)\]`)

// TestLuaHeaders: every script starts with a header naming its KEYS, its
// ARGV and what it returns, and documents every KEYS[n] and ARGV[n] its
// code reads; a prelude (lua/lib) has a header and reads neither.
func TestLuaHeaders(t *testing.T) {
	files, err := fs.Glob(luaFS, "lua/*.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts embedded: %v", err)
	}
	for _, f := range files {
		b, _ := luaFS.ReadFile(f)
		head, body := header(string(b))
		for _, want := range []string{"-- KEYS[", "-- ARGV[", "-- Returns"} {
			if !strings.Contains(head, want) {
				t.Errorf("%s: the header does not name %s", f, want)
			}
		}
		for _, m := range indexed.FindAllString(body, -1) {
			if !strings.Contains(head, "-- "+m+" ") {
				t.Errorf("%s: the code reads %s, which the header does not document", f, m)
			}
		}
	}
	libs, _ := fs.Glob(luaFS, "lua/lib/*.lua")
	for _, f := range libs {
		b, _ := luaFS.ReadFile(f)
		head, body := header(string(b))
		if len(head) == 0 {
			t.Errorf("%s: no header", f)
		}
		if strings.Contains(body, "KEYS") || strings.Contains(body, "ARGV") {
			t.Errorf("%s: a prelude reads KEYS or ARGV, which belong to the script it is put in front of", f)
		}
	}
}

// TestEveryLuaFileIsUsed: every embedded file is built into a script (or is
// a prelude of one), and every script is built from a file once. That every
// script has a wrapper that runs it is TestScriptsAfterScriptFlush's.
func TestEveryLuaFileIsUsed(t *testing.T) {
	err := fs.WalkDir(luaFS, "lua", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if name := strings.TrimPrefix(path, "lua/"); !loaded[name] {
			t.Errorf("%s is embedded but no script is built from it", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range scripts {
		if seen[s.name] {
			t.Errorf("%s is built into two scripts", s.name)
		}
		seen[s.name] = true
	}
}

// TestBatchLibKeys: the batch keys the scripts derive are the ones keys.go
// names.
func TestBatchLibKeys(t *testing.T) {
	if !strings.Contains(batchLib, "'"+batchPrefix+"'") || !strings.Contains(batchLib, "'"+batchJobsPrefix+"'") {
		t.Error("lib/batch.lua does not derive the batch keys keys.go names")
	}
	if strings.Contains(batchLib, "$BATCH") {
		t.Error("lib/batch.lua keeps a placeholder")
	}
}

// TestAgentLibKeys: the agent index and job record keys lib/agent.lua
// derives are the ones keys.go names.
func TestAgentLibKeys(t *testing.T) {
	if !strings.Contains(agentLib, "'"+agentPrefix+"'") || !strings.Contains(agentLib, "'"+JobPrefix+"'") {
		t.Error("lib/agent.lua does not derive the keys keys.go names")
	}
	if strings.Contains(agentLib, "$AGENT") || strings.Contains(agentLib, "$JOB") {
		t.Error("lib/agent.lua keeps a placeholder")
	}
}
