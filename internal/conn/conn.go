// Package conn opens what the commands, the demo and the bench share: one
// Redis connection, checked to answer, with the store and the producer on it,
// both set up from the configuration. It is the one place that turns a
// config.Config into them.
package conn

import (
	"context"
	"errors"

	"github.com/hibiken/asynq"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

// Conn is an open connection to rcslaunch's Redis.
type Conn struct {
	// Redis is the connection option, for workers and asynq clients.
	Redis    asynq.RedisConnOpt
	Store    *store.Store
	Producer *queue.Producer
}

// Open connects to cfg's Redis and checks that it answers. The store trims
// the results stream at cfg.ResultsMaxLen and keeps what it finishes for
// cfg.JobRetention; the producer enqueues for cfg.SID. Close it when done.
func Open(ctx context.Context, cfg config.Config) (*Conn, error) {
	opt, err := cfg.RedisConnOpt()
	if err != nil {
		return nil, err
	}
	rdb := config.RedisClient(opt)
	if err := config.CheckRedis(ctx, rdb); err != nil {
		rdb.Close()
		return nil, err
	}
	st := store.New(rdb)
	st.ResultsMaxLen = cfg.ResultsMaxLen
	// A batch finished here (closed after its last outcome, a dead letter
	// restored) expires like its jobs' records.
	st.Retention = cfg.JobRetention
	return &Conn{Redis: opt, Store: st,
		Producer: &queue.Producer{Store: st, Client: asynq.NewClient(opt), SID: cfg.SID}}, nil
}

// Close closes the producer's and the store's connections.
func (c *Conn) Close() error {
	return errors.Join(c.Producer.Client.Close(), c.Store.Redis().Close())
}
