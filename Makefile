# Image URLs for the operator and the bundled service.
IMG ?= ghcr.io/pacer-dev/pacer:v0.1.0
API_IMG ?= ghcr.io/pacer-dev/pacer-api:v0.1.0

# Tools run with the repo's Go toolchain; bash for pipefail in recipes.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

# The project's Go (README; docs/operator.md, Supply chain): the go command
# fetches this toolchain from the module proxy once per machine. The
# machine's Go 1.26.8 has standard-library vulnerabilities that `make
# vulncheck` finds reachable. hack/go-env.sh sets the same for scripts run
# outside make, and the Dockerfile's builder names it; bump all three.
export GOTOOLCHAIN := go1.27.3
# Its own bin/ goes first on PATH: the tools that load packages (controller-gen,
# golangci-lint, govulncheck) ask `go` for the release tags with
# GO111MODULE=off, where GOTOOLCHAIN is ignored, and would type-check the new
# standard library as the machine's Go.
GO_ROOT := $(shell GOTOOLCHAIN=$(GOTOOLCHAIN) go env GOROOT)
ifeq ($(GO_ROOT),)
$(error could not get Go $(GOTOOLCHAIN): the go command fetches it from the Go module proxy)
endif
export PATH := $(GO_ROOT)/bin:$(PATH)

GOBIN ?= $(shell go env GOPATH)/bin
CONTAINER_TOOL ?= docker

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD, RBAC Role and webhook manifests from markers.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods from markers.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint (pinned; .golangci.yml) on the three modules.
	"$(GOLANGCI_LINT)" run
	cd hack/devcluster && "$(GOLANGCI_LINT)" run --config ../../.golangci.yml
	cd hack/observability && "$(GOLANGCI_LINT)" run --config ../../.golangci.yml

.PHONY: verify
verify: manifests generate ## Fail when generated files are out of date with the markers.
	git diff --exit-code -- api config || { echo "generated files are stale: run 'make manifests generate' and commit"; exit 1; }

.PHONY: test-deps
test-deps: ## Build the envtest binaries, start PostgreSQL and Redis, install Prometheus (idempotent).
	hack/envtest-assets.sh >/dev/null
	hack/postgres.sh >/dev/null
	hack/redis.sh >/dev/null
	hack/prometheus.sh >/dev/null

.PHONY: test
# -count=1: the tests talk to real servers, so a cached result proves nothing.
test: manifests generate fmt vet test-deps test-observability ## Run all tests against a real kube-apiserver, etcd, PostgreSQL and Redis.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" \
	PACER_TEST_DATABASE_URL="$$(hack/postgres.sh)" \
	PACER_TEST_REDIS_URL="$$(hack/redis.sh)" \
	PACER_TEST_PROMETHEUS_BIN="$$(hack/prometheus.sh)" \
	go test -race -count=1 -p 2 ./... -coverprofile cover.out
	# A bounded fuzz run over the whole pacer-api handler (issue 11).
	PACER_TEST_DATABASE_URL="$$(hack/postgres.sh)" \
	go test -count=1 -run '^$$' -fuzz FuzzHandler -fuzztime 20s ./service/app/

.PHONY: observability
observability: manifests ## Regenerate the dashboard JSON and the chart's copies of the CRDs, the manager's rules and the alert rules.
	cd hack/observability && go run ./cmd/generate ../..

.PHONY: test-observability
test-observability: ## The alert rules (promtool check/test), the dashboard's queries, and the Helm chart (lint/template with each values file, against config/, install and upgrade on envtest).
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" \
	PACER_TEST_PROMTOOL="$$(dirname "$$(hack/prometheus.sh)")/promtool" \
	PACER_TEST_HELM="$$(hack/helm.sh)" \
	bash -c 'cd hack/observability && go vet ./... && go test -count=1 ./...'

.PHONY: bench-operator
bench-operator: manifests ## 1,000 TunedServices in envtest, 100 with hung /metrics: convergence, repair latency, writes at rest, peak RSS.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" \
	go test ./test/benchoperator/ -run '^$$' -bench . -benchtime 1x -timeout 20m -v

.PHONY: bench-service
bench-service: build ## Load pacer-api and a bare baseline side by side on loopback.
	PACER_BENCH_DATABASE_URL="$$(hack/postgres.sh)" hack/bench-service.sh

.PHONY: bench-instructions
bench-instructions: ## Instructions per uncached read, pacer-api vs the bare baseline, under callgrind (~5 min; load-independent).
	PACER_BENCH_DATABASE_URL="$$(hack/postgres.sh)" hack/bench-instructions.sh

.PHONY: test-e2e
test-e2e: manifests ## End-to-end test on the dev cluster: a shortened demo with assertions.
	hack/test-e2e.sh

.PHONY: test-demo-compare
test-demo-compare: manifests ## A shortened demo-compare campaign on the dev cluster with assertions (~6 min).
	hack/test-e2e.sh -tags e2e,compare -run TestDemoCompareSmoke

.PHONY: vulncheck
vulncheck: ## govulncheck over the root and dev cluster modules, with the pinned offline database (hack/tools/govulncheck).
	hack/vulncheck.sh

.PHONY: bump-base-images
bump-base-images: ## Pin the Dockerfile's base images to the digests their tags point to now (needs crane or docker buildx, and the registries).
	hack/bump-base-images.sh

.PHONY: test-devcluster
test-devcluster: ## Vet and test the dev cluster module (its own go.mod under hack/devcluster; the kubelet API test runs envtest).
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" && export KUBEBUILDER_ASSETS && \
	cd hack/devcluster && go vet ./... && go test -race -count=1 ./...

.PHONY: tuning-scorecard
tuning-scorecard: ## Run the tuner in the simulator against baselines; write docs/tuning-scorecard.{md,json}.
	go run ./hack/scorecard

##@ Demo

.PHONY: demo
demo: manifests ## The whole loop on this machine, no cluster needed (~3 min; DEMO_DURATION=1m shortens it).
	hack/demo.sh

.PHONY: demo-compare
demo-compare: manifests ## The same load against static settings, two real HPAs and Pacer, one after the other (~16 min; DEMO_DURATION=1m shortens each run).
	hack/demo.sh --compare

.PHONY: demo-compare-campaign
demo-compare-campaign: manifests ## demo-compare on the default load three times and bursts.shape once, with medians and targets (~50 min; docs/demo.md).
	DEMO_DURATION=$${DEMO_DURATION:-2m} hack/demo.sh --compare --shapes 'default*3,hack/demo/shapes/bursts.shape'

.PHONY: demo-budget
demo-budget: manifests ## Two TunedServices on one database and one ConnectionBudget, one spiking, then with an HPA (~6 min; DEMO_DURATION=2m shortens it).
	hack/demo.sh --budget

.PHONY: dev-cluster
dev-cluster: manifests ## Run a local cluster (control plane, node agent, manager) until Ctrl-C; prints its kubeconfig.
	go build -ldflags "-X main.defaultAPIImage=$(API_IMG)" -o bin/manager .
	go build -o bin/pacer-api ./service/cmd/pacer-api
	cd hack/devcluster && go build -o ../../bin/devcluster .
	hack/envtest-assets.sh metrics-server kubectl >/dev/null || echo "WARNING: could not build metrics-server or kubectl; no resource metrics" >&2
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh etcd kube-apiserver kube-controller-manager kube-scheduler)" \
	bin/devcluster --image pacer-api=bin/pacer-api --manager bin/manager

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager and pacer-api binaries into bin/.
	go build -ldflags "-X main.defaultAPIImage=$(API_IMG)" -o bin/manager .
	go build -o bin/pacer-api ./service/cmd/pacer-api

.PHONY: run
run: manifests generate fmt vet ## Run the controller against the cluster in ~/.kube/config.
	go run ./main.go

.PHONY: docker-build
docker-build: ## Build the operator image (IMG) and the pacer-api image (API_IMG).
	$(CONTAINER_TOOL) build --target manager --build-arg API_IMG=$(API_IMG) -t $(IMG) .
	$(CONTAINER_TOOL) build --target pacer-api -t $(API_IMG) .

.PHONY: docker-push
docker-push: ## Push both images.
	$(CONTAINER_TOOL) push $(IMG)
	$(CONTAINER_TOOL) push $(API_IMG)

.PHONY: build-installer
build-installer: manifests generate kustomize ## Write dist/install.yaml: CRDs and the operator in one file.
	mkdir -p dist
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=$(IMG)
	"$(KUSTOMIZE)" build config/default > dist/install.yaml

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize ## Install the CRDs into the cluster in ~/.kube/config.
	"$(KUSTOMIZE)" build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRDs. ignore-not-found=true ignores missing resources.
	"$(KUSTOMIZE)" build config/crd | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the operator to the cluster in ~/.kube/config.
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=$(IMG)
	"$(KUSTOMIZE)" build config/default | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the operator. ignore-not-found=true ignores missing resources.
	"$(KUSTOMIZE)" build config/default | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

##@ Dependencies

LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

KUBECTL ?= kubectl
KUSTOMIZE ?= $(LOCALBIN)/kustomize
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint

KUSTOMIZE_VERSION ?= v5.8.3
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0

.PHONY: kustomize
kustomize: $(LOCALBIN) ## Download kustomize locally if necessary.
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: controller-gen
controller-gen: $(LOCALBIN) ## Download controller-gen locally if necessary.
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: golangci-lint
golangci-lint: $(LOCALBIN) ## Download golangci-lint locally if necessary.
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# TOOLS_CACHE keeps each pinned tool built once per machine, keyed by version
# and by the Go that built it, outside the repo (as the Kubernetes binaries
# are): a fresh clone, as CI makes, links them into bin/ instead of building
# them again. The Go is in the key because controller-gen and golangci-lint
# type-check with the go/types they were built with, which refuses a newer
# standard library.
TOOLS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/pacer/tools

# go-install-tool links bin/NAME to TOOLS_CACHE/NAME-VERSION-GO, building it
# there with 'go install' first when this machine has not built it yet. It
# runs every time (the targets are phony): a link left by an older version or
# Go is replaced, not trusted because bin/NAME exists.
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
define go-install-tool
@cached="$(TOOLS_CACHE)/$$(basename "$(1)")-$(3)-$(GOTOOLCHAIN)" ;\
[ -x "$$cached" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Building $${package} (once per machine, cached in $(TOOLS_CACHE))" ;\
tmp="$$(mktemp -d)" ;\
GOBIN="$$tmp" go install $${package} ;\
mkdir -p "$(TOOLS_CACHE)" ;\
mv "$$tmp/$$(basename "$(1)")" "$$cached" ;\
rmdir "$$tmp" ;\
} ;\
ln -sf "$$cached" "$(1)"
endef
