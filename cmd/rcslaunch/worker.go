package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rcslaunch/rcslaunch/internal/cli"
	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/internal/httpapi"
	"github.com/rcslaunch/rcslaunch/internal/metrics"
	"github.com/rcslaunch/rcslaunch/internal/rdb"
	"github.com/rcslaunch/rcslaunch/internal/workerenv"
	"github.com/rcslaunch/rcslaunch/worker"
)

func runWorker(ctx context.Context, args []string, io cli.Stdio) int {
	f := cli.NewFlags(io, "worker", "", `Runs the launch worker until SIGINT or SIGTERM, then shuts down gracefully:
calls in flight finish and are recorded, jobs not yet started go back to the queue.
Configured by the environment: KALEYRA_SID and KALEYRA_API_KEY for one account,
or ACCOUNTS_FILE for many (read again on SIGHUP and whenever the file changes).
With METRICS_ADDR set, it serves Prometheus metrics at /metrics there (behind
HTTP_ADMIN_TOKEN when set; a non-loopback address needs one).`)
	if code, ok := f.ParseNone(args); !ok {
		return code
	}
	cfg, err := config.Load(config.NeedSID | config.NeedAPIKey | config.NeedStrongMetricsToken)
	if err != nil {
		return cli.Fail(io, err)
	}
	opt, err := cfg.RedisConnOpt()
	if err != nil {
		return cli.Fail(io, err)
	}
	log := newLogger(cfg, io.Err)
	rdb.LogTo(log)
	opts, err := workerenv.Options(cfg, opt, &log)
	if err != nil {
		return cli.Fail(io, err)
	}
	var metricsSrv *httpapi.HTTPServer
	if cfg.MetricsAddr != "" {
		admin := cfg.HTTPAdminToken.Reveal()
		if admin == "" {
			admin = cfg.HTTPToken.Reveal()
		}
		if err := httpapi.CheckMetricsListen(cfg.MetricsAddr, admin); err != nil {
			return cli.Fail(io, err)
		}
		reg := prometheus.NewRegistry()
		opts.Metrics = reg
		metricsSrv = httpapi.NewHTTPServer(httpapi.MetricsOnly(metrics.Handler(reg), admin), httpapi.DefaultLimits, log)
	}
	w, err := worker.New(opts)
	if err != nil {
		return cli.Fail(io, err)
	}
	if metricsSrv != nil {
		go func() {
			if err := metricsSrv.ListenAndServe(cfg.MetricsAddr); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Str("addr", cfg.MetricsAddr).Msg("metrics server stopped")
			}
		}()
		defer metricsSrv.Close()
		log.Info().Str("addr", cfg.MetricsAddr).Msg("serving /metrics")
	}
	go workerenv.Reload(ctx, cfg, w, log)
	if err := w.Run(ctx); err != nil {
		return cli.Fail(io, err)
	}
	return cli.ExitOK
}
