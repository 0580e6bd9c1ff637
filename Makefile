# The README's commands. `make test` is what CI runs.
GO ?= go
FUZZTIME ?= 10s

.PHONY: demo test unit fuzz build

demo:
	$(GO) run ./cmd/rcslaunch demo

build:
	CGO_ENABLED=0 $(GO) build -o bin/rcslaunch ./cmd/rcslaunch

# Unit and integration tests with the race detector, then each fuzz target
# for a bounded time on its committed seed corpus and new inputs.
test:
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./launch/
	$(GO) test -run '^$$' -fuzz '^FuzzParseResponse$$' -fuzztime $(FUZZTIME) ./internal/kaleyra/
	$(GO) test -run '^$$' -fuzz '^FuzzCSV$$' -fuzztime $(FUZZTIME) ./internal/jobfile/
	$(GO) test -run '^$$' -fuzz '^FuzzJSONL$$' -fuzztime $(FUZZTIME) ./internal/jobfile/
	$(GO) test -run '^$$' -fuzz '^FuzzDelay$$' -fuzztime $(FUZZTIME) ./internal/backoff/
