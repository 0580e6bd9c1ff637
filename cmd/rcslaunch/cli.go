package main

import (
	"context"
	"io"
	"strings"

	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/conn"
)

// newLogger builds the process logger from LOG_LEVEL and LOG_FORMAT.
func newLogger(c config.Config, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(strings.ToLower(c.LogLevel))
	if err != nil {
		level = zerolog.InfoLevel
	}
	if c.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, NoColor: !cli.IsTerminal(w)}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// app is what most commands need: configuration and the operations layer
// on the shared Redis.
type app struct {
	cfg config.Config
	*conn.Conn
}

// open loads the configuration (with need) and connects to Redis.
func open(ctx context.Context, need config.Need) (*app, error) {
	cfg, err := config.Load(need)
	if err != nil {
		return nil, err
	}
	return openWith(ctx, cfg)
}

func openWith(ctx context.Context, cfg config.Config) (*app, error) {
	c, err := conn.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &app{cfg: cfg, Conn: c}, nil
}

// withApp runs fn with an open app, reporting a failure to open as cli.ExitFailed.
func withApp(ctx context.Context, io cli.Stdio, need config.Need, fn func(*app) int) int {
	a, err := open(ctx, need)
	if err != nil {
		return cli.Fail(io, err)
	}
	defer a.Close()
	return fn(a)
}
