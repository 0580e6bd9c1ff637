// Package config reads rcslaunch's settings from the environment (the
// variables are listed in the README) and checks them, so that a bad value is
// reported by its variable's name before anything starts.
package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/rcslaunch/rcslaunch/internal/kaleyra"
)

// Config is every environment variable rcslaunch reads.
type Config struct {
	RedisURL          string         `envconfig:"REDIS_URL" default:"redis://127.0.0.1:6379/0"`
	RedisClusterAddrs []string       `envconfig:"REDIS_CLUSTER_ADDRS"`
	SID               string         `envconfig:"KALEYRA_SID"`
	APIKey            kaleyra.Secret `envconfig:"KALEYRA_API_KEY"`
	Pod               string         `envconfig:"KALEYRA_POD" default:"in"`
	BaseURL           string         `envconfig:"KALEYRA_BASE_URL"`
	Timeout           time.Duration  `envconfig:"KALEYRA_TIMEOUT" default:"30s"`
	RateLimit         float64        `envconfig:"KALEYRA_RATE_LIMIT" default:"10"`
	RateBurst         int            `envconfig:"KALEYRA_RATE_BURST" default:"1"`
	MaxInFlight       int            `envconfig:"KALEYRA_MAX_IN_FLIGHT" default:"5"`
	CoolOffThreshold  int            `envconfig:"COOLOFF_THRESHOLD" default:"5"`
	CoolOffWindow     time.Duration  `envconfig:"COOLOFF_WINDOW" default:"10s"`
	CoolOffDuration   time.Duration  `envconfig:"COOLOFF_DURATION" default:"30s"`
	Concurrency       int            `envconfig:"WORKER_CONCURRENCY" default:"10"`
	RetryMax          int            `envconfig:"RETRY_MAX" default:"8"`
	RetryBaseDelay    time.Duration  `envconfig:"RETRY_BASE_DELAY" default:"1s"`
	RetryMaxDelay     time.Duration  `envconfig:"RETRY_MAX_DELAY" default:"5m"`
	RetryCodes        []string       `envconfig:"RETRY_CODES" default:"RCS502"`
	JobRetention      time.Duration  `envconfig:"JOB_RETENTION" default:"2160h"`
	ResultsMaxLen     int64          `envconfig:"RESULTS_MAX_LEN" default:"0"`
	HTTPAddr          string         `envconfig:"HTTP_ADDR" default:"127.0.0.1:8080"`
	MetricsAddr       string         `envconfig:"METRICS_ADDR"`
	HTTPToken         kaleyra.Secret `envconfig:"HTTP_TOKEN"`
	HTTPAdminToken    kaleyra.Secret `envconfig:"HTTP_ADMIN_TOKEN"`
	LogLevel          string         `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat         string         `envconfig:"LOG_FORMAT" default:"json"`
}

// Need names what a command requires beyond the defaults.
type Need int

const (
	NeedSID    Need = 1 << iota // KALEYRA_SID: producers and workers
	NeedAPIKey                  // KALEYRA_API_KEY: workers
)

// Load reads the environment and checks every value, reporting all problems
// at once, each by its variable's name. Values are never echoed for
// KALEYRA_API_KEY.
func Load(need Need) (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return c, fmt.Errorf("%s: cannot parse %q as %s", pe.KeyName, pe.Value, pe.TypeName)
		}
		return c, err
	}
	return c, c.Check(need)
}

// Check validates the values, reporting every problem by variable name.
func (c *Config) Check(need Need) error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	if need&NeedSID != 0 && strings.TrimSpace(c.SID) == "" {
		bad("KALEYRA_SID", "is required (your Kaleyra account SID)")
	}
	if c.SID != "" && strings.ContainsAny(c.SID, "/?#% \t\r\n") {
		bad("KALEYRA_SID", "must not contain '/', '?', '#', '%%' or white space")
	}
	if need&NeedAPIKey != 0 && strings.TrimSpace(c.APIKey.Reveal()) == "" {
		bad("KALEYRA_API_KEY", "is required (the api-key Kaleyra gave you)")
	}
	if _, err := kaleyra.BaseURL(c.Pod, c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.Timeout <= 0 {
		bad("KALEYRA_TIMEOUT", "must be positive, got %v", c.Timeout)
	}
	if c.RateLimit <= 0 {
		bad("KALEYRA_RATE_LIMIT", "must be positive, got %v", c.RateLimit)
	}
	if c.RateBurst < 1 {
		bad("KALEYRA_RATE_BURST", "must be at least 1, got %d", c.RateBurst)
	}
	if c.MaxInFlight < 1 {
		bad("KALEYRA_MAX_IN_FLIGHT", "must be at least 1, got %d", c.MaxInFlight)
	}
	if c.CoolOffThreshold < 0 {
		bad("COOLOFF_THRESHOLD", "must not be negative (0 disables the cool-off), got %d", c.CoolOffThreshold)
	}
	if c.CoolOffWindow <= 0 {
		bad("COOLOFF_WINDOW", "must be positive, got %v", c.CoolOffWindow)
	}
	if c.CoolOffDuration <= 0 {
		bad("COOLOFF_DURATION", "must be positive, got %v", c.CoolOffDuration)
	}
	if c.Concurrency < 1 {
		bad("WORKER_CONCURRENCY", "must be at least 1, got %d", c.Concurrency)
	}
	if c.RetryMax < 0 {
		bad("RETRY_MAX", "must not be negative, got %d", c.RetryMax)
	}
	if c.RetryBaseDelay <= 0 {
		bad("RETRY_BASE_DELAY", "must be positive, got %v", c.RetryBaseDelay)
	}
	if c.RetryMaxDelay < c.RetryBaseDelay {
		bad("RETRY_MAX_DELAY", "must be at least RETRY_BASE_DELAY (%v), got %v", c.RetryBaseDelay, c.RetryMaxDelay)
	}
	for _, code := range c.RetryCodes {
		if strings.TrimSpace(code) == "" || strings.ContainsAny(code, " \t") {
			bad("RETRY_CODES", "must be a comma-separated list of codes such as RCS502, got %q", strings.Join(c.RetryCodes, ","))
			break
		}
	}
	if c.JobRetention < 0 {
		bad("JOB_RETENTION", "must not be negative, got %v", c.JobRetention)
	}
	if c.ResultsMaxLen < 0 {
		bad("RESULTS_MAX_LEN", "must not be negative, got %d", c.ResultsMaxLen)
	}
	switch strings.ToLower(c.LogLevel) {
	case "trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled":
	default:
		bad("LOG_LEVEL", "must be one of debug, info, warn, error, got %q", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		bad("LOG_FORMAT", "must be json or console, got %q", c.LogFormat)
	}
	return errors.Join(errs...)
}
