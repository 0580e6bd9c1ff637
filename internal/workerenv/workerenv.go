// Package workerenv maps the environment's configuration onto
// worker.Options, for the commands that run a worker configured by the
// environment. It sits above both: config knows nothing of the worker, and
// the public worker package takes no internal type.
package workerenv

import (
	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/worker"
)

// Options returns the worker's options for c, with redis (from
// c.RedisConnOpt) and log, and the accounts of ACCOUNTS_FILE when it is set.
// Every value carries over as it is: a variable's zero means the same as its
// Options field's.
func Options(c config.Config, redis asynq.RedisConnOpt, log *zerolog.Logger) (worker.Options, error) {
	list, err := Accounts(c)
	if err != nil {
		return worker.Options{}, err
	}
	return worker.Options{
		Accounts:          list,
		Redis:             redis,
		SID:               c.SID,
		APIKey:            c.APIKey.Reveal(),
		BaseURL:           c.BaseURL,
		Pod:               c.Pod,
		Timeout:           c.Timeout,
		RateLimit:         c.RateLimit,
		RateBurst:         c.RateBurst,
		MaxInFlight:       c.MaxInFlight,
		CoolOffThreshold:  c.CoolOffThreshold,
		CoolOffWindow:     c.CoolOffWindow,
		CoolOffDuration:   c.CoolOffDuration,
		Concurrency:       c.Concurrency,
		RetryMax:          c.RetryMax,
		RetryBaseDelay:    c.RetryBaseDelay,
		RetryMaxDelay:     c.RetryMaxDelay,
		RetryCodes:        c.RetryCodes,
		JobRetention:      c.JobRetention,
		ResultsMaxLen:     c.ResultsMaxLen,
		FollowLaunch:      c.FollowLaunch,
		StatusPath:        c.LaunchStatusPath,
		FollowInterval:    c.FollowInterval,
		FollowMaxInterval: c.FollowMaxInterval,
		FollowMaxAge:      c.FollowMaxAge,
		Logger:            log,
	}, nil
}
