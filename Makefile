# Recon — build, run and test. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
DATA  ?= data
PKGS  := ./...
# Packages with concurrency worth running under the race detector.
RACE_PKGS := ./runtime/... ./sinks/... ./sources/...
FUZZTIME ?= 10s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0
APT_PACKAGES := snmp snmpd snmptrapd monitoring-plugins-basic monitoring-plugins-standard \
	liburiparser1 dnsmasq-base bind9-dnsutils iproute2 kcat iputils-ping procps chromium \
	prometheus-alertmanager

.PHONY: help build run test test-race test-kafka lint fuzz bench docs docs-check deps ci clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build reconc and recond into ./bin
	$(GO) build -o $(BIN)/ ./cmd/...

run: build ## run the quickstart pipeline on the embedded journal, archive in ./data
	$(BIN)/reconc check examples/quickstart.recon
	@echo "recond: data in $(DATA)/, listener http://127.0.0.1:43191 — Ctrl-C stops (everything accepted is archived first)"
	@echo "query:  duckdb -c \"SELECT source, metric, count(*) FROM read_parquet('$(DATA)/archive/samples/**/*.parquet', hive_partitioning = true) GROUP BY ALL\""
	$(BIN)/recond run examples/quickstart.recon --data $(DATA)

test: ## unit, peer and interop tests (CI=true: a missing peer fails)
	$(GO) test -count=1 $(PKGS)
	cd interop/duckdb && $(GO) test -count=1 ./...

test-kafka: ## the Kafka integration tests (broker, collectors, archivers, rules as separate processes)
	$(GO) test -count=1 ./runtime/kafkabus/... ./runtime/kafkarole/... ./runtime/live/livekafka/...
	cd interop/duckdb && $(GO) test -count=1 -run 'TestKafka|TestRecondRolesOverKafka' .

test-race: ## race detector on the concurrent packages
	$(GO) test -race -count=1 $(RACE_PKGS)

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

fuzz: ## every fuzz target, FUZZTIME each (default 10s)
	@.ci/fuzz.sh $(FUZZTIME)

bench: ## benchmarks of the hot paths (figures go to docs/benchmarks.md)
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=1s $(PKGS)

docs: ## regenerate docs/modules.md from the module specs
	$(GO) run ./cmd/docgen -o docs/modules.md

docs-check: ## fail when generated docs are stale
	$(GO) run ./cmd/docgen -check docs/modules.md

deps: ## install the test peers (Debian packages)
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get update -qq && \
	$$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)
	cd interop/arrowjs && npm ci --no-audit --no-fund --loglevel=error
	cd interop/mibs && npm ci --no-audit --no-fund --loglevel=error

ci: deps build lint docs-check test test-race fuzz ## what .ci/run runs

clean:
	rm -rf $(BIN)
