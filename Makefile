# offshoot — see README.md.
GO      ?= go
BIN     ?= bin/offshoot
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
## TAGS=noargocdapi builds the server binary the Dockerfile builds: no Argo CD API
## client (so no `status`), 50 MB smaller and ~60 MB less resident memory.
TAGS    ?=

.PHONY: all build test demo vet fuzz golden clean

all: build

build:
	$(GO) build -tags "$(TAGS)" -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/offshoot

## test: vet, then every test (real git server, real kustomize builds, real CRD schemas)
test: vet
	$(GO) test -race -count=1 ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags noargocdapi ./cmd/offshoot

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

## bench: the issue #6 table — offshoot vs the naive pipeline at N = 10, 1,000, 10,000,
## a 1,000-webhook burst to offshoot serve, its peak RSS (several minutes; pre-filled
## repos and the kustomize CLI are cached in bench/.cache). Output also in bench/.cache/results.md.
.PHONY: bench
bench:
	@mkdir -p bench/.cache
	$(GO) run ./bench/cmd/offshoot-bench $(BENCHFLAGS) | tee bench/.cache/results.md

## e2e: issue #5's scenario on a local kube-apiserver + Argo CD built from Go modules
## (test/e2e, its own module). Builds what is missing into test/e2e/bin (the cluster
## binary: ~15 min cold on 2 idle cores, with module downloads), installs etcd/redis with apt-get if absent, runs
## everything on 127.0.0.1, tears it down (also on failure and Ctrl-C), keeps the logs.
E2E_BIN := test/e2e/bin
E2E_LDFLAGS := -s -w $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,-X $(p).gitVersion=v1.31.0 -X $(p).gitMajor=1 -X $(p).gitMinor=31) -X k8s.io/component-base/version.gitTreeState=clean
.PHONY: e2e
e2e:
	@for b in etcd redis-server; do command -v $$b >/dev/null 2>&1 || { \
	  echo "e2e: installing etcd-server redis-server"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server redis-server >/dev/null) || exit 1; break; }; done
	@mkdir -p $(E2E_BIN)
	@if [ ! -x $(E2E_BIN)/e2ecluster ] || [ test/e2e/go.mod -nt $(E2E_BIN)/e2ecluster ] || [ test/e2e/cmd/e2ecluster/main.go -nt $(E2E_BIN)/e2ecluster ]; then \
	  echo "e2e: building $(E2E_BIN)/e2ecluster (kube-apiserver, kube-controller-manager, kubectl, Argo CD; ~15 min cold)"; \
	  s=$$(date +%s); cd test/e2e && nice -n 10 $(GO) build -ldflags "$(E2E_LDFLAGS)" -o bin/e2ecluster ./cmd/e2ecluster || exit 1; \
	  echo "e2e: built in $$(( $$(date +%s) - s ))s"; fi
	@[ -x $(E2E_BIN)/kustomize ] || { echo "e2e: building kustomize v5.4.3 (the CLI Argo CD's repo-server runs)"; \
	  GOBIN=$(CURDIR)/$(E2E_BIN) nice -n 10 $(GO) install sigs.k8s.io/kustomize/kustomize/v5@v5.4.3; }
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(E2E_BIN)/offshoot ./cmd/offshoot
	$(GO) build -o $(E2E_BIN)/gitserver ./hack/gitserver
	cd test/e2e && $(GO) test -v -count=1 -timeout 45m -run TestScenario . $(E2EFLAGS)
