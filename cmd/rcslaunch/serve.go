package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/httpapi"
	"github.com/rcslaunch/rcslaunch/internal/limits"
	"github.com/rcslaunch/rcslaunch/internal/metrics"
	"github.com/rcslaunch/rcslaunch/internal/queue"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/store"
)

func runServe(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "serve", "", `Serves the HTTP API for producers (POST /v1/launches, POST /v1/launches:batch,
GET /v1/launches/{id}, GET /v1/batches[/{id}]) and operators (/v1/deadletters…,
/v1/stats), with /healthz and /readyz, on HTTP_ADDR (default 127.0.0.1:8080).
Producer routes take HTTP_TOKEN, operator routes HTTP_ADMIN_TOKEN (HTTP_TOKEN when unset), as
"Authorization: Bearer <token>". Also: the web UI at /ui/ (sign in with the admin
token), Prometheus metrics at /metrics (admin token), the OpenAPI document at
/openapi.json. It refuses a non-loopback address without a token.`)
	if code, ok := f.ParseNone(args); !ok {
		return code
	}
	cfg, err := config.Load(config.NeedStrongTokens) // without KALEYRA_SID, a job must name its account
	if err != nil {
		return cli.Fail(io, err)
	}
	if err := httpapi.CheckListen(cfg.HTTPAddr, cfg.HTTPToken.Reveal(), cfg.HTTPAdminToken.Reveal()); err != nil {
		return cli.Fail(io, err)
	}
	a, err := openWith(ctx, cfg)
	if err != nil {
		return cli.Fail(io, err)
	}
	defer a.Close()
	log := newLogger(cfg, io.Err)
	rdb.LogTo(log)
	inspector := asynq.NewInspector(a.Redis)
	defer inspector.Close()
	reg, err := fleetMetrics(a, inspector)
	if err != nil {
		return cli.Fail(io, err)
	}
	api := httpapi.New(httpapi.Options{
		Ops: a.Ops, Redis: a.Redis, Logger: log, Metrics: metrics.Handler(reg),
		Token: cfg.HTTPToken.Reveal(), AdminToken: cfg.HTTPAdminToken.Reveal(),
	})
	srv := httpapi.NewHTTPServer(api.Handler(), httpapi.DefaultLimits, log)
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(cfg.HTTPAddr) }()
	log.Info().Str("addr", cfg.HTTPAddr).Msg("serving the HTTP API")
	if w := httpapi.TokenWarning(cfg.HTTPToken.Reveal(), cfg.HTTPAdminToken.Reveal()); w != "" {
		log.Warn().Msg(w)
	}
	select {
	case err := <-done:
		return cli.Fail(io, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return cli.Fail(io, err)
	}
	return cli.ExitOK
}

// fleetSIDs lists the accounts whose limits the fleet metrics show: those
// live workers serve, and KALEYRA_SID.
func fleetSIDs(f *queue.Fleet, sid string) func() []string {
	return func() []string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sids, _ := f.SIDs(ctx) // a Redis error shows in the collector's own reads
		if sid != "" && !slices.Contains(sids, sid) {
			sids = append(sids, sid)
		}
		return sids
	}
}

// fleetMetrics is the registry of the fleet-wide metrics, read from Redis.
func fleetMetrics(a *app, inspector *asynq.Inspector) (*prometheus.Registry, error) {
	rc := rdb.NewClient(a.Redis)
	lim, err := limits.New(rc, limits.Config{Rate: a.cfg.RateLimit, Burst: a.cfg.RateBurst, MaxInFlight: a.cfg.MaxInFlight})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	metrics.RegisterFleet(reg, store.New(rc), lim, fleetSIDs(queue.NewFleet(rc), a.cfg.SID), inspector)
	return reg, nil
}
