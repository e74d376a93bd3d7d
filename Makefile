# offshoot — see README.md.
GO      ?= go
BIN     ?= bin/offshoot
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test demo vet fuzz golden clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/offshoot

## test: vet, then every test (real git server, real kustomize builds, real CRD schemas)
test: vet
	$(GO) test -race -count=1 ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

## demo: master → staging → feature_1 on a local git server, no cluster, no GitHub
demo:
	bash hack/demo.sh

## fuzz: fuzz branch name → environment name for a while
fuzz:
	$(GO) test ./generator -run '^$$' -fuzz FuzzEnvName -fuzztime 60s

## golden: rewrite the golden files after an intended rendering change
golden:
	$(GO) test ./generator -run Golden -update

clean:
	rm -rf bin
