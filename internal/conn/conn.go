// Package conn turns the environment's configuration into what the commands,
// the demo and the bench share: the Redis connection option (for workers and
// asynq's tools) and the operations layer on it. It is the one place that
// does, so every command connects alike.
package conn

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/ops"
)

// Conn is the configuration's Redis with the operations layer on it.
type Conn struct {
	// Redis is the connection option, for workers and asynq's tools.
	Redis asynq.RedisConnOpt
	// Ops enqueues for cfg.SID; a batch finished through it (closed after its
	// last outcome, a dead letter restored) expires like its jobs' records,
	// after cfg.JobRetention.
	Ops *ops.Client
}

// New sets up cfg's Redis without connecting yet, for a command that may
// not need it at all (a dry run). Close it when done.
func New(cfg config.Config) (*Conn, error) {
	opt, err := cfg.RedisConnOpt()
	if err != nil {
		return nil, err
	}
	c, err := ops.New(ops.Options{Redis: opt, SID: cfg.SID, JobRetention: cfg.JobRetention})
	if err != nil {
		return nil, err
	}
	return &Conn{Redis: opt, Ops: c}, nil
}

// Open is New, then a check that Redis answers and is recent enough.
func Open(ctx context.Context, cfg config.Config) (*Conn, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Ops.Check(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connections.
func (c *Conn) Close() error { return c.Ops.Close() }
