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

	"github.com/rcslaunch/rcslaunch/internal/baseurl"
	"github.com/rcslaunch/rcslaunch/internal/defaults"
	"github.com/rcslaunch/rcslaunch/internal/secret"
)

// Config is every environment variable rcslaunch reads.
//
// The launch settings' defaults come from package defaults (the worker's
// too), set by Load before it reads the environment: a field whose variable
// is unset keeps them. The other defaults, which no other package shares,
// are the default tags here. Zero means what the README says, the same as
// in worker.Options: RETRY_MAX=0 no retries, JOB_RETENTION=0 forever,
// COOLOFF_THRESHOLD=0 no cool-off, RESULTS_MAX_LEN=0 never trims.
type Config struct {
	RedisURL          string        `envconfig:"REDIS_URL" default:"redis://127.0.0.1:6379/0"`
	RedisClusterAddrs []string      `envconfig:"REDIS_CLUSTER_ADDRS"`
	SID               string        `envconfig:"KALEYRA_SID"`
	AccountsFile      string        `envconfig:"ACCOUNTS_FILE"`
	APIKey            secret.String `envconfig:"KALEYRA_API_KEY"`
	Pod               string        `envconfig:"KALEYRA_POD"`
	BaseURL           string        `envconfig:"KALEYRA_BASE_URL"`
	Timeout           time.Duration `envconfig:"KALEYRA_TIMEOUT"`
	RateLimit         float64       `envconfig:"KALEYRA_RATE_LIMIT"`
	RateBurst         int           `envconfig:"KALEYRA_RATE_BURST"`
	MaxInFlight       int           `envconfig:"KALEYRA_MAX_IN_FLIGHT"`
	CoolOffThreshold  int           `envconfig:"COOLOFF_THRESHOLD"`
	CoolOffWindow     time.Duration `envconfig:"COOLOFF_WINDOW"`
	CoolOffDuration   time.Duration `envconfig:"COOLOFF_DURATION"`
	Concurrency       int           `envconfig:"WORKER_CONCURRENCY"`
	RetryMax          int           `envconfig:"RETRY_MAX"`
	RetryBaseDelay    time.Duration `envconfig:"RETRY_BASE_DELAY"`
	RetryMaxDelay     time.Duration `envconfig:"RETRY_MAX_DELAY"`
	RetryCodes        []string      `envconfig:"RETRY_CODES"`
	JobRetention      time.Duration `envconfig:"JOB_RETENTION"`
	ResultsMaxLen     int64         `envconfig:"RESULTS_MAX_LEN"`
	FollowLaunch      bool          `envconfig:"FOLLOW_LAUNCH"`
	LaunchStatusPath  string        `envconfig:"LAUNCH_STATUS_PATH"`
	FollowInterval    time.Duration `envconfig:"FOLLOW_INTERVAL"`
	FollowMaxInterval time.Duration `envconfig:"FOLLOW_MAX_INTERVAL"`
	FollowMaxAge      time.Duration `envconfig:"FOLLOW_MAX_AGE"`
	HTTPAddr          string        `envconfig:"HTTP_ADDR" default:"127.0.0.1:8080"`
	MetricsAddr       string        `envconfig:"METRICS_ADDR"`
	HTTPToken         secret.String `envconfig:"HTTP_TOKEN"`
	HTTPAdminToken    secret.String `envconfig:"HTTP_ADMIN_TOKEN"`
	LogLevel          string        `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat         string        `envconfig:"LOG_FORMAT" default:"json"`
}

// withDefaults returns a Config holding the launch settings' defaults, for
// envconfig to overwrite where a variable is set (envconfig leaves a field
// without a default tag alone when its variable is unset).
func withDefaults() Config {
	return Config{
		Pod:               defaults.Pod,
		Timeout:           defaults.Timeout,
		RateLimit:         defaults.RateLimit,
		RateBurst:         defaults.RateBurst,
		MaxInFlight:       defaults.MaxInFlight,
		CoolOffThreshold:  defaults.CoolOffThreshold,
		CoolOffWindow:     defaults.CoolOffWindow,
		CoolOffDuration:   defaults.CoolOffDuration,
		Concurrency:       defaults.Concurrency,
		RetryMax:          defaults.RetryMax,
		RetryBaseDelay:    defaults.RetryBaseDelay,
		RetryMaxDelay:     defaults.RetryMaxDelay,
		RetryCodes:        []string{defaults.RetryCode},
		JobRetention:      defaults.JobRetention,
		LaunchStatusPath:  defaults.LaunchStatusPath,
		FollowInterval:    defaults.FollowInterval,
		FollowMaxInterval: defaults.FollowMaxInterval,
		FollowMaxAge:      defaults.FollowMaxAge,
	}
}

// Need names what a command requires beyond the defaults.
type Need int

const (
	// NeedSID: the worker needs KALEYRA_SID, unless ACCOUNTS_FILE is set
	// (then it serves the file's accounts). Producers do not need it: a job
	// names its account (sid), else takes KALEYRA_SID, else is refused.
	NeedSID    Need = 1 << iota
	NeedAPIKey      // KALEYRA_API_KEY: workers, unless ACCOUNTS_FILE is set
	// NeedStrongTokens: serve, whose HTTP_TOKEN and HTTP_ADMIN_TOKEN
	// (when set) face the network.
	NeedStrongTokens
	// NeedStrongMetricsToken: the worker, whose /metrics on METRICS_ADDR
	// (when set) takes HTTP_ADMIN_TOKEN, or HTTP_TOKEN without it.
	NeedStrongMetricsToken
)

// MinTokenBytes is the shortest HTTP_TOKEN or HTTP_ADMIN_TOKEN a server
// accepts: failed guesses are throttled, not stopped, so a token must be
// too long to guess at any rate.
const MinTokenBytes = 16

// placeholderTokens are the tokens docker-compose.yml once shipped:
// published, so no secret, whatever their length.
var placeholderTokens = []string{"change-me-producer", "change-me-admin"}

// Load reads the environment and checks every value, reporting all problems
// at once, each by its variable's name. Values are never echoed for
// KALEYRA_API_KEY.
func Load(need Need) (Config, error) {
	c := withDefaults()
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
	if need&NeedSID != 0 && strings.TrimSpace(c.SID) == "" && c.AccountsFile == "" {
		bad("KALEYRA_SID", "is required (your Kaleyra account SID), or ACCOUNTS_FILE for many accounts")
	}
	if c.SID != "" {
		if err := baseurl.CheckSID(c.SID); err != nil {
			bad("KALEYRA_SID", "%w", err)
		}
	}
	if need&NeedAPIKey != 0 && strings.TrimSpace(c.APIKey.Reveal()) == "" && c.AccountsFile == "" {
		bad("KALEYRA_API_KEY", "is required (the api-key Kaleyra gave you)")
	}
	// KALEYRA_BASE_URL overrides the pod, which is then not looked at.
	if c.BaseURL != "" {
		if _, err := baseurl.Check(c.BaseURL); err != nil {
			bad("KALEYRA_BASE_URL", "%w", err)
		}
	} else if _, err := baseurl.ForPod(c.Pod); err != nil {
		bad("KALEYRA_POD", "%w", err)
	}
	c.checkLimits(bad)
	c.checkRetries(bad)
	c.checkFollow(bad)
	c.checkTokens(need, bad)
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

// checkLimits validates the call limits: timeout, rate, in-flight cap,
// cool-off and the worker's concurrency.
func (c *Config) checkLimits(bad func(name, format string, args ...any)) {
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
}

// checkRetries validates the retry policy and what is kept of finished jobs.
func (c *Config) checkRetries(bad func(name, format string, args ...any)) {
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
}

// checkTokens validates the HTTP tokens of the servers need says will run.
func (c *Config) checkTokens(need Need, bad func(name, format string, args ...any)) {
	if need&NeedStrongTokens != 0 {
		checkToken(bad, "HTTP_TOKEN", c.HTTPToken)
		checkToken(bad, "HTTP_ADMIN_TOKEN", c.HTTPAdminToken)
	}
	if need&NeedStrongMetricsToken != 0 && c.MetricsAddr != "" {
		if c.HTTPAdminToken.Reveal() != "" {
			checkToken(bad, "HTTP_ADMIN_TOKEN", c.HTTPAdminToken)
		} else {
			checkToken(bad, "HTTP_TOKEN", c.HTTPToken)
		}
	}
}

// checkFollow validates the launch follow-up's settings, whether or not
// FOLLOW_LAUNCH is on: a worker started with it later must not find them bad.
func (c *Config) checkFollow(bad func(name, format string, args ...any)) {
	// asynq schedules in whole seconds: a shorter first wait would poll early.
	if c.FollowInterval < time.Second {
		bad("FOLLOW_INTERVAL", "must be at least 1s, got %v", c.FollowInterval)
	}
	if c.FollowMaxInterval < c.FollowInterval {
		bad("FOLLOW_MAX_INTERVAL", "must be at least FOLLOW_INTERVAL (%v), got %v", c.FollowInterval, c.FollowMaxInterval)
	}
	if c.FollowMaxAge < c.FollowInterval {
		bad("FOLLOW_MAX_AGE", "must be at least FOLLOW_INTERVAL (%v), got %v", c.FollowInterval, c.FollowMaxAge)
	}
	if _, err := baseurl.StatusPath(c.LaunchStatusPath); err != nil {
		bad("LAUNCH_STATUS_PATH", "%w", err)
	}
}

// checkToken refuses a set token that could be guessed: too short, or a
// published placeholder. The token itself is never quoted.
func checkToken(bad func(name, format string, args ...any), name string, token secret.String) {
	t := token.Reveal()
	if t == "" { // no token: CheckListen allows that on loopback only
		return
	}
	for _, p := range placeholderTokens {
		if strings.EqualFold(t, p) {
			bad(name, "is a published placeholder, not a secret: set it to a random string of %d+ characters (e.g. openssl rand -hex 24)", MinTokenBytes)
			return
		}
	}
	if len(t) < MinTokenBytes {
		bad(name, "is %d bytes, too short to resist guessing: set it to a random string of %d+ characters (e.g. openssl rand -hex 24)", len(t), MinTokenBytes)
	}
}
