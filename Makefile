# The README's commands. `make test` is what CI runs.
GO ?= go
# go.mod's toolchain line pins the Go release the tests are written for (the
# differential ones compare with encoding/json as that release builds it). A
# go command set to ignore it (GOTOOLCHAIN=local in its go env file, as on some
# machines) is pointed at it, as .ci/run does; GOTOOLCHAIN in the environment
# wins.
GOTOOLCHAIN ?= $(shell sed -n 's/^toolchain //p' go.mod)
export GOTOOLCHAIN
# Fuzz budgets are execution counts, not durations: a duration races Go's fuzz
# coordinator at the deadline (golang/go#75804, fixed only in Go 1.27) and fails
# with "context deadline exceeded" on a busy machine. Each count is about 5-10 s
# here on 2 cores; FUZZTIME=30s (or 1000000x) overrides them all.
FUZZTIME ?=
fuzzbudget = $(if $(FUZZTIME),$(FUZZTIME),$(1))

.PHONY: demo test unit fuzz build bench

demo:
	$(GO) run ./cmd/rcslaunch demo

build:
	CGO_ENABLED=0 $(GO) build -o bin/rcslaunch ./cmd/rcslaunch

# Each fuzz target for a bounded budget (its committed seed corpus plus new
# inputs), then every unit and integration test with the race detector.
test: fuzz
	$(GO) test -race -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(call fuzzbudget,50000x) ./launch/
	$(GO) test -run '^$$' -fuzz '^FuzzParseResponse$$' -fuzztime $(call fuzzbudget,40000x) ./internal/kaleyra/
	$(GO) test -run '^$$' -fuzz '^FuzzParseLaunchStatus$$' -fuzztime $(call fuzzbudget,100000x) ./internal/kaleyra/
	$(GO) test -run '^$$' -fuzz '^FuzzEchoedKey$$' -fuzztime $(call fuzzbudget,15000x) ./internal/kaleyra/
	$(GO) test -run '^$$' -fuzz '^FuzzRedact$$' -fuzztime $(call fuzzbudget,50000x) ./internal/secret/
	$(GO) test -run '^$$' -fuzz '^FuzzString$$' -fuzztime $(call fuzzbudget,200000x) ./internal/jsontext/
	$(GO) test -run '^$$' -fuzz '^FuzzCSV$$' -fuzztime $(call fuzzbudget,200000x) ./internal/jobfile/
	$(GO) test -run '^$$' -fuzz '^FuzzJSONL$$' -fuzztime $(call fuzzbudget,200000x) ./internal/jobfile/
	$(GO) test -run '^$$' -fuzz '^FuzzDelay$$' -fuzztime $(call fuzzbudget,200000x) ./internal/backoff/
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(call fuzzbudget,15000x) ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzKey$$' -fuzztime $(call fuzzbudget,100000x) ./internal/throttle/
	$(GO) test -run '^$$' -fuzz '^FuzzCell$$' -fuzztime $(call fuzzbudget,300000x) ./internal/csvsafe/
	$(GO) test -run '^$$' -fuzz '^FuzzEscape$$' -fuzztime $(call fuzzbudget,30000x) ./internal/display/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(call fuzzbudget,50000x) ./internal/accounts/

# The figures in BENCHMARKS.md: the Go benchmarks of the hot functions, then
# the pipeline against bare asynq (its own redis-server; medians of 3 runs).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./launch/ ./internal/kaleyra/ ./internal/jobfile/ ./internal/limits/ ./internal/store/ ./internal/queue/
	$(GO) build -o bin/rcslaunch ./cmd/rcslaunch
	env -u REDIS_URL bin/rcslaunch bench
