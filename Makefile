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
## (test/e2e, its own module). Builds what is missing, installs etcd/redis with apt-get
## if absent, runs everything on 127.0.0.1, tears it down (also on failure and Ctrl-C),
## keeps the logs. The cluster binary (kube-apiserver, controller-manager, scheduler,
## kubelet, kube-proxy, kubectl, Argo CD: ~20 min cold on 2 idle cores with module
## downloads) and kustomize are cached outside the checkout, keyed by their inputs:
## $(E2E_CACHE)/<name>-<hash>, so a fresh clone on this machine reuses them.
E2E_BIN := test/e2e/bin
E2E_CACHE ?= $(or $(OFFSHOOT_E2E_CACHE),$(HOME)/.cache/offshoot-e2e)
E2E_LDFLAGS := -s -w $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,-X $(p).gitVersion=v1.31.0 -X $(p).gitMajor=1 -X $(p).gitMinor=31) -X k8s.io/component-base/version.gitTreeState=clean
E2E_CLUSTER_KEY = $(shell cd test/e2e && { cat go.mod go.sum cmd/e2ecluster/*.go; echo '$(E2E_LDFLAGS)'; $(GO) env GOVERSION; } | sha256sum | cut -c1-12)
.PHONY: e2e e2e-bins e2e-node e2e-node-bins e2e-up e2e-down
e2e-bins:
	@for b in etcd redis-server git; do command -v $$b >/dev/null 2>&1 || { \
	  echo "e2e: installing etcd-server redis-server git"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server redis-server git >/dev/null) || exit 1; break; }; done
	@mkdir -p $(E2E_BIN) $(E2E_CACHE)
	@c=$(E2E_CACHE)/e2ecluster-$(E2E_CLUSTER_KEY); if [ ! -x $$c ]; then \
	  echo "e2e: building $$c (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl, Argo CD; ~20 min cold)"; \
	  s=$$(date +%s); (cd test/e2e && nice -n 10 $(GO) build -ldflags "$(E2E_LDFLAGS)" -o $$c.tmp ./cmd/e2ecluster) || exit 1; mv $$c.tmp $$c; \
	  echo "e2e: built in $$(( $$(date +%s) - s ))s"; fi; ln -sf $$c $(E2E_BIN)/e2ecluster
	@k=$(E2E_CACHE)/kustomize-v5.4.3; [ -x $$k/kustomize ] || { echo "e2e: building kustomize v5.4.3 (the CLI Argo CD's repo-server runs)"; \
	  GOBIN=$$k nice -n 10 $(GO) install sigs.k8s.io/kustomize/kustomize/v5@v5.4.3 || exit 1; }; ln -sf $$k/kustomize $(E2E_BIN)/kustomize
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(E2E_BIN)/offshoot ./cmd/offshoot
	$(GO) build -o $(E2E_BIN)/gitserver ./hack/gitserver

e2e: e2e-bins
	cd test/e2e && $(GO) test -v -count=1 -timeout 45m -run 'TestScenario$$' . $(E2EFLAGS)

## e2e-node: issue #12's scenario on a real node (kubelet + containerd, the CloudNativePG
## operator v1.30.0, the Barman Cloud plugin v0.14.0, an S3 server, the app), through
## Argo CD. Installs the Debian packages it needs if absent; e2eprep (test/e2e/tools)
## builds the operator, the plugin, the images (debootstrap trixie + PostgreSQL 17) into
## $(E2E_CACHE), keyed by their inputs. Needs root. See docs/e2e.md.
E2E_NODE_PKGS := containerd runc containernetworking-plugins iptables conntrack debootstrap
E2E_IMAGES := $(CURDIR)/$(E2E_BIN)/images.json
e2e-node-bins: e2e-bins
	@for b in containerd runc iptables conntrack debootstrap; do command -v $$b >/dev/null 2>&1 && [ -x /usr/lib/cni/bridge ] || { \
	  echo "e2e: installing $(E2E_NODE_PKGS)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(E2E_NODE_PKGS) >/dev/null) || exit 1; break; }; done
	cd test/e2e/tools && $(GO) build -o ../bin/e2es3 ./cmd/e2es3 && $(GO) build -o ../bin/e2eprep ./cmd/e2eprep
	cd test/e2e && OFFSHOOT_E2E_CACHE=$(E2E_CACHE) bin/e2eprep -e2e . -out $(E2E_IMAGES)

e2e-node: e2e-node-bins
	cd test/e2e && E2E_NODE=1 E2E_IMAGES=$(E2E_IMAGES) $(GO) test -v -count=1 -timeout 60m -run 'TestNode$$' . $(E2EFLAGS)

## e2e-up: the same node, left running with master, staging and feature_1 synced; prints
## the kubeconfig, Argo CD's address and a token, each env's app and psql. e2e-down stops
## it and cleans up (the host's sysctls, mounts, links, iptables rules restored).
E2E_UP_DIR := /tmp/offshoot-e2e-up
e2e-up: e2e-node-bins
	@if [ -f $(E2E_UP_DIR)/pid ] && kill -0 $$(cat $(E2E_UP_DIR)/pid) 2>/dev/null; then echo "e2e-up: already running (make e2e-down)"; cat $(E2E_UP_DIR)/info.txt 2>/dev/null; exit 1; fi
	rm -rf $(E2E_UP_DIR) && mkdir -p $(E2E_UP_DIR)/work
	cd test/e2e && $(GO) test -c -o bin/e2e.test .
	cd test/e2e && E2E_NODE=1 E2E_NODE_KEEP=1 E2E_IMAGES=$(E2E_IMAGES) E2E_WORKDIR=$(E2E_UP_DIR)/work E2E_UP_INFO=$(E2E_UP_DIR)/info.txt \
	  setsid nohup bin/e2e.test -test.v -test.count=1 -test.timeout=0 -test.run 'TestNode$$' $(E2EFLAGS) > $(E2E_UP_DIR)/test.log 2>&1 < /dev/null & echo $$! > $(E2E_UP_DIR)/pid
	@echo "e2e-up: starting (log: $(E2E_UP_DIR)/test.log)"
	@while [ ! -s $(E2E_UP_DIR)/info.txt ]; do kill -0 $$(cat $(E2E_UP_DIR)/pid) 2>/dev/null || { tail -40 $(E2E_UP_DIR)/test.log; echo "e2e-up: failed"; exit 1; }; sleep 2; done
	@cat $(E2E_UP_DIR)/info.txt

e2e-down:
	@if [ -f $(E2E_UP_DIR)/pid ] && p=$$(cat $(E2E_UP_DIR)/pid) && kill -0 $$p 2>/dev/null; then \
	  kill -TERM $$p; while kill -0 $$p 2>/dev/null; do sleep 1; done; tail -5 $(E2E_UP_DIR)/test.log; echo "e2e-down: stopped"; \
	else echo "e2e-down: nothing running"; fi
	@rm -f $(E2E_UP_DIR)/pid
