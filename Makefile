# Bilean. `make demo` and `make test` are what a newcomer types first.
GO      ?= go
BIN     := bin/bilean
PKGS    := ./...

.PHONY: build demo test bench lint fmt clean

build:
	$(GO) build -o $(BIN) ./cmd/bilean

# Invoices a deterministic synthetic cloud for October 2026 on a fresh embedded store.
demo: build
	./$(BIN) demo --dir demo-out --projects 20

# The whole suite: formatting, vet, every test (integration tests included), then the concurrent
# parts again under the race detector.
test: lint
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(GO) test -race -count=1 -timeout 20m ./pipeline/ ./handlers/ ./e2e/

# Benchmarks of whole runs and hot paths; see README for how to read them.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./e2e/
	$(GO) test -run '^$$' -bench . -benchmem ./rating/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w .

clean:
	rm -rf bin demo-out var
