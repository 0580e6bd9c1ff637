# The README's commands. `make test` is what CI runs.
GO ?= go
FUZZTIME ?= 10s

.PHONY: demo test unit fuzz build bench

demo:
	$(GO) run ./cmd/rcslaunch demo

build:
	CGO_ENABLED=0 $(GO) build -o bin/rcslaunch ./cmd/rcslaunch

# Each fuzz target for a bounded time (its committed seed corpus plus new
# inputs), then every unit and integration test with the race detector.
test: fuzz
	$(GO) test -race -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./launch/
	$(GO) test -run '^$$' -fuzz '^FuzzParseResponse$$' -fuzztime $(FUZZTIME) ./internal/kaleyra/
	$(GO) test -run '^$$' -fuzz '^FuzzParseLaunchStatus$$' -fuzztime $(FUZZTIME) ./internal/kaleyra/
	$(GO) test -run '^$$' -fuzz '^FuzzString$$' -fuzztime $(FUZZTIME) ./internal/jsontext/
	$(GO) test -run '^$$' -fuzz '^FuzzCSV$$' -fuzztime $(FUZZTIME) ./internal/jobfile/
	$(GO) test -run '^$$' -fuzz '^FuzzJSONL$$' -fuzztime $(FUZZTIME) ./internal/jobfile/
	$(GO) test -run '^$$' -fuzz '^FuzzDelay$$' -fuzztime $(FUZZTIME) ./internal/backoff/
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/config/

# The figures in BENCHMARKS.md: the Go benchmarks of the hot functions, then
# the pipeline against bare asynq (its own redis-server; medians of 3 runs).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./launch/ ./internal/kaleyra/ ./internal/jobfile/ ./internal/limits/ ./internal/store/ ./internal/queue/
	$(GO) build -o bin/rcslaunch ./cmd/rcslaunch
	env -u REDIS_URL bin/rcslaunch bench
