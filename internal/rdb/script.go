package rdb

import (
	"context"
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// luaFS holds every Lua script of rcslaunch (lua/*.lua) and the preludes
// they share (lua/lib/*.lua). Each file starts with a comment header naming
// its KEYS and ARGV and what it returns.
//
//go:embed lua/*.lua lua/lib/*.lua
var luaFS embed.FS

// loaded names every file of luaFS that a script was built from, and
// scripts lists every script built, so that a test can tell that no file is
// left unused and that every script runs.
var (
	loaded  = map[string]bool{}
	scripts []*script
)

// batchLib is lib/batch.lua, the batch helpers of the scripts that change a
// job's state or a batch, with its placeholders replaced by the batch key
// prefixes ($BATCH_JOBS first: $BATCH is a prefix of it).
var batchLib = strings.NewReplacer("$BATCH_JOBS", batchJobsPrefix, "$BATCH", batchPrefix).Replace(readLua("lib/batch.lua"))

// agentLib is lib/agent.lua, the agent index's helpers, with its placeholders
// replaced by the index's key prefix and the job records'.
var agentLib = strings.NewReplacer("$AGENT", agentPrefix, "$JOB", JobPrefix).Replace(readLua("lib/agent.lua"))

// readLua returns the file lua/<name>, which is embedded: a missing one is a
// bug in this package, caught by its tests at init.
func readLua(name string) string {
	b, err := luaFS.ReadFile("lua/" + name)
	if err != nil {
		panic(fmt.Sprintf("rdb: embedded Lua %s: %v", name, err))
	}
	loaded[name] = true
	return string(b)
}

// asFunction is the script lua/<name> as a local function of the same name
// (without .lua), whose KEYS and ARGV are its arguments: a script that runs
// others in turn puts them in front of its own body.
func asFunction(name string) string {
	fn := strings.TrimSuffix(name, ".lua")
	return "local function " + fn + "(KEYS, ARGV)\n" + readLua(name) + "\nend\n"
}

// script is one Lua script, run by EVALSHA with EVAL when Redis does not
// know it; recover is the one place that handles NOSCRIPT.
type script struct {
	name string // file name under lua/, for errors
	src  string
	sha  string
}

// load builds the script lua/<name> with the given preludes put in front.
func load(name string, preludes ...string) *script {
	src := strings.Join(preludes, "") + readLua(name)
	h := sha1.Sum([]byte(src))
	s := &script{name: name, src: src, sha: hex.EncodeToString(h[:])}
	scripts = append(scripts, s)
	return s
}

// run runs s on c and returns its answer: EVALSHA, then EVAL on NOSCRIPT.
func (s *script) run(ctx context.Context, c redis.Scripter, keys []string, args []any) *redis.Cmd {
	return s.recover(ctx, c, c.EvalSha(ctx, s.sha, keys, args...), keys, args)
}

// recover is the one way back from NOSCRIPT (Redis restarted, failed over or
// had its script cache flushed, so the script did not run): given cmd, the
// answer to an EVALSHA of s with keys and args, sent alone or on a pipeline,
// it returns cmd, or when cmd failed with NOSCRIPT runs s again on c with
// EVAL (which also caches it in Redis) and returns that answer.
func (s *script) recover(ctx context.Context, c redis.Scripter, cmd *redis.Cmd, keys []string, args []any) *redis.Cmd {
	if !isNoScript(cmd.Err()) {
		return cmd
	}
	return c.Eval(ctx, s.src, keys, args...)
}

// isNoScript reports whether err is Redis's NOSCRIPT, raw or as go-redis
// normalizes it.
func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// call runs s on c and decodes its answer.
func call[T any](ctx context.Context, c redis.Scripter, s *script, keys []string, args []any, decode func(*redis.Cmd) (T, error)) (T, error) {
	return decoded(s, s.run(ctx, c, keys, args), decode)
}

// decoded decodes s's answer cmd, naming the script in an error.
func decoded[T any](s *script, cmd *redis.Cmd, decode func(*redis.Cmd) (T, error)) (T, error) {
	v, err := decode(cmd)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("script %s: %w", s.name, err)
	}
	return v, nil
}

// Pending is a script queued on a pipeline, so that it shares a round trip
// with other commands; Result reads its answer once the pipeline has run.
type Pending[T any] struct {
	s      *script
	cmd    *redis.Cmd
	keys   []string
	args   []any
	decode func(*redis.Cmd) (T, error)
}

// queue queues s on pipe with EVALSHA.
func queue[T any](ctx context.Context, pipe redis.Pipeliner, s *script, keys []string, args []any, decode func(*redis.Cmd) (T, error)) *Pending[T] {
	return &Pending[T]{s: s, cmd: pipe.EvalSha(ctx, s.sha, keys, args...), keys: keys, args: args, decode: decode}
}

// Result returns the script's answer once the pipeline has run. When Redis
// did not know the script (NOSCRIPT: it did not run), it runs it again alone
// on c, so that a queued script runs once like a direct one; read again, the
// answer is the same, and the script does not run again.
func (p *Pending[T]) Result(ctx context.Context, c redis.Scripter) (T, error) {
	p.cmd = p.s.recover(ctx, c, p.cmd, p.keys, p.args)
	return decoded(p.s, p.cmd, p.decode)
}
