# Bilean. `make demo` and `make test` are what a newcomer types first.
GO      ?= go
BIN     := bin/bilean
PKGS    := ./...
# gotestsum runs go test and ends with a line per package and a summary that lists every skipped
# test, so a reader of the CI log can count skips (go test -json underneath).
GOTESTSUM ?= $(GO) run gotest.tools/gotestsum@v1.13.0

.PHONY: build demo test bench lint fmt clean

build:
	$(GO) build -o $(BIN) ./cmd/bilean

# Invoices a deterministic synthetic cloud for October 2026 on a fresh embedded store.
demo: build
	./$(BIN) demo --dir demo-out --projects 20

# The whole suite: formatting, vet, every test (integration tests included), then the concurrent
# parts again under the race detector.
test: lint
	$(GOTESTSUM) --format pkgname -- -count=1 -timeout 20m $(PKGS)
	$(GOTESTSUM) --format pkgname -- -race -count=1 -timeout 20m -short ./pipeline/ ./handlers/ ./e2e/ ./balance/ ./ceilometer/listener/

# Benchmarks of whole runs and hot paths; see README for how to read them. Those needing a
# service (PostgreSQL, RabbitMQ, Gnocchi) skip when it is down; `bash .ci/run` starts them all.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./e2e/
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1000000x ./rating/
	$(GO) test -run '^$$' -bench 'Documents|PDFParallel|PDFFonts' -benchmem ./invoice/render/
	$(GO) test -run '^$$' -bench PDF10kParallel -benchtime 1x ./invoice/render/
	$(GO) test -run '^$$' -bench 'Import|ExclusionKeys' -benchtime 1x -timeout 30m ./store/postgres/
	$(GO) test -run '^$$' -bench Finalize -benchtime 2000x ./store/postgres/
	$(GO) test -run '^$$' -bench 'Capture/(defaults|postgres)' -benchtime 100000x -timeout 30m ./ceilometer/listener/
	$(GO) test -run '^$$' -bench RecordEvents -benchtime 100000x -benchmem ./ceilometer/listener/
	$(GO) test -run '^$$' -bench ParseEvent -benchmem ./ceilometer/notification/
	$(GO) test -run '^$$' -bench BalanceQuery -benchtime 20000x ./balance/
	$(GO) test -run '^$$' -bench FetchMonth -benchtime 2x -benchmem -timeout 30m ./ceilometer/usage/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w .

clean:
	rm -rf bin demo-out var
