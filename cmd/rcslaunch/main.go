// Command rcslaunch submits RCS Business Messaging agents for carrier launch
// through Kaleyra's API, as a job queue on Redis: enqueue launches, run
// workers, follow results, and replay dead letters.
//
// Run "rcslaunch help" for the commands; configuration is read from the
// environment (see the README).
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rcslaunch/rcslaunch/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// go-redis's own messages (a pool that cannot dial while Redis is down)
	// are log events like every other, not plain text lines among a
	// command's output; worker and serve set their own logger again.
	// Invalid settings are reported by the command itself.
	if cfg, err := config.Load(0); err == nil {
		logRedisTo(newLogger(cfg, os.Stderr))
	}
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}

// Exit statuses, as the README documents them.
const (
	exitOK     = 0 // success
	exitFailed = 1 // the command ran but something failed (invalid rows, unknown job, …)
	exitUsage  = 2 // usage error
)

// stdio is a command's standard streams, so tests can run commands in-process.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, io stdio) int
}

func commands() []command {
	return []command{
		{"worker", "run the worker until SIGINT/SIGTERM", runWorker},
		{"enqueue", "validate and enqueue launch jobs (one from stdin, or a file)", runEnqueue},
		{"status", "show a job's state", runStatus},
		{"dlq", "list, show, retry, delete or export dead letters", runDLQ},
		{"results", "read the results stream", runResults},
		{"batch", "follow a bulk run: list batches, a batch's status, its report", runBatch},
		{"serve", "serve the HTTP API for producers and operators", runServe},
		{"sim", "run a local Kaleyra RCS API simulator", runSim},
		{"demo", "run the whole pipeline locally against the simulator, no credentials needed", runDemo},
		{"bench", "measure the pipeline against bare asynq (throughput, bulk enqueue, latency, Redis cost)", runBench},
	}
}

func run(ctx context.Context, args []string, io stdio) int {
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		usage(io.out)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], io)
		}
	}
	errorf(io, "unknown command %q", args[0])
	usage(io.err)
	return exitUsage
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

func usage(w io.Writer) {
	fprintf(w, "Usage: rcslaunch COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fprintf(w, "\nRun \"rcslaunch COMMAND --help\" for a command's flags. Configuration comes from\nthe environment: REDIS_URL, KALEYRA_SID, KALEYRA_API_KEY, … (see the README).\n")
}
