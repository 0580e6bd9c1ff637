// Command rcslaunch submits RCS Business Messaging agents for carrier launch
// through Kaleyra's API, as a job queue on Redis: enqueue launches, run
// workers, follow results, and replay dead letters.
//
// Run "rcslaunch help" for the commands; configuration is read from the
// environment (see the README).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// go-redis's own messages (a pool that cannot dial while Redis is down)
	// are log events like every other, not plain text lines among a
	// command's output; worker and serve set their own logger again.
	// Invalid settings are reported by the command itself.
	if cfg, err := config.Load(0); err == nil {
		rdb.LogTo(newLogger(cfg, os.Stderr))
	}
	code := run(ctx, os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     cli.Func
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

func run(ctx context.Context, args []string, io cli.Stdio) int {
	if len(args) == 0 || cli.IsHelp(args[0]) || args[0] == "help" {
		usage(io.Out)
		if len(args) == 0 {
			return cli.ExitUsage
		}
		return cli.ExitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], io)
		}
	}
	cli.Errorf(io, "unknown command %q", args[0])
	usage(io.Err)
	return cli.ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: rcslaunch COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun \"rcslaunch COMMAND --help\" for a command's flags. Configuration comes from\nthe environment: REDIS_URL, KALEYRA_SID, KALEYRA_API_KEY, … (see the README).\n")
}
