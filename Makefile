# bff — make targets. Only Go is needed; `make test` in CI also needs Redis
# and Chromium (.ci/run installs and starts them).
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 3s
BENCHTIME   ?= 2s

.PHONY: dev build test test-unit fuzz fuzz-long bench lint clean

## dev: start the embedded provider, the demo API and the BFF on localhost (ARGS="--listen …" to move ports)
dev:
	$(GO) run ./cmd/bff dev $(ARGS)

## build: build bin/bff
build:
	$(GO) build -trimpath -ldflags "-X main.version=$$(git describe --tags --always --dirty 2>/dev/null || echo unknown)" -o bin/bff ./cmd/bff

## test: vet, the whole suite with the race detector, then a short fuzz run
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz

## fuzz: run each fuzz target briefly (FUZZTIME per target)
fuzz:
	@set -e; for target in $$(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)' --include='*_test.go' . | sed 's/func //' | sort -u); do \
		pkg=$$(grep -rlE "^func $$target\(" --include='*_test.go' . | head -n1 | xargs dirname); \
		echo "fuzz $$target in $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## fuzz-long: the same, one minute per target
fuzz-long:
	$(MAKE) fuzz FUZZTIME=1m

## bench: throughput/latency ratios vs a bare reverse proxy, /auth/me rate, bytes per session, refresh storm
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./internal/bench/

## lint: gofmt, go vet and staticcheck
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin
