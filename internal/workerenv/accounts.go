package workerenv

import (
	"context"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rcslaunch/rcslaunch/internal/accounts"
	"github.com/rcslaunch/rcslaunch/internal/config"
	"github.com/rcslaunch/rcslaunch/worker"
)

// Accounts reads c's ACCOUNTS_FILE into the worker's accounts, the
// single-SID variables standing for the fields an account leaves out. It
// returns nil without ACCOUNTS_FILE.
func Accounts(c config.Config) ([]worker.Account, error) {
	list, err := load(c)
	if err != nil || list == nil {
		return nil, err
	}
	return toWorker(list), nil
}

func load(c config.Config) ([]accounts.Account, error) {
	if c.AccountsFile == "" {
		return nil, nil
	}
	d := accounts.Defaults{Pod: c.Pod, Rate: c.RateLimit, Burst: c.RateBurst, MaxInFlight: c.MaxInFlight, RetryMax: c.RetryMax}
	return accounts.Load(c.AccountsFile, d, os.Getenv)
}

func toWorker(list []accounts.Account) []worker.Account {
	out := make([]worker.Account, len(list))
	for i, a := range list {
		out[i] = worker.Account{SID: a.SID, APIKey: a.APIKey.Reveal(), Pod: a.Pod, RateLimit: a.Rate,
			RateBurst: a.Burst, MaxInFlight: a.MaxInFlight, RetryMax: a.RetryMax}
	}
	return out
}

// reloadCheck is how often Reload looks at the accounts file's modification
// time and size.
const reloadCheck = 2 * time.Second

// Reload keeps w's accounts in step with c's ACCOUNTS_FILE until ctx ends:
// it reads the file again on SIGHUP and whenever the file changes (and once
// at its start, for a change since the worker read it), and puts a list that
// differs from the served one in service. A file that does not load (a typo,
// a key variable unset) is logged with every problem and changes nothing:
// the worker goes on with the accounts it has. Without ACCOUNTS_FILE it only
// logs that SIGHUP has nothing to reload.
func Reload(ctx context.Context, c config.Config, w *worker.Worker, log zerolog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	seen := stamp(c.AccountsFile)
	if c.AccountsFile != "" {
		reload(c, w, log)
	}
	tick := time.NewTicker(reloadCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if c.AccountsFile == "" {
				log.Info().Msg("SIGHUP: no ACCOUNTS_FILE to reload")
				continue
			}
		case <-tick.C:
			if stamp(c.AccountsFile) == seen {
				continue
			}
		}
		seen = stamp(c.AccountsFile)
		reload(c, w, log)
	}
}

// reload reads c's ACCOUNTS_FILE and puts its accounts in service when they
// differ from w's, logging what changed.
func reload(c config.Config, w *worker.Worker, log zerolog.Logger) {
	next, err := load(c)
	if err != nil {
		log.Error().Err(err).Msg("accounts not reloaded; serving the accounts as before")
		return
	}
	prev, list := w.Accounts(), toWorker(next)
	if slices.Equal(prev, list) {
		return
	}
	if err := w.SetAccounts(list); err != nil {
		log.Error().Err(err).Msg("accounts not reloaded; serving the accounts as before")
		return
	}
	added, removed, changed := accounts.Diff(prev, list, func(a worker.Account) string { return a.SID })
	log.Info().Strs("added", added).Strs("removed", removed).Strs("changed", changed).Msg("accounts file reloaded")
}

// fileStamp is what tells a file changed: its modification time and size.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}
