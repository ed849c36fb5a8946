# meetergo-operator
#
#   make demo    run the operator's whole job locally (control plane + fake meetergo)
#   make test    vet, generated-file check, unit and envtest tests
#
# Everything the targets need is built from the Go module proxy into bin/.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMG ?= ghcr.io/meetergo-operator/meetergo-operator:$(VERSION)

K8S_VERSION ?= 1.37.2
ETCD_VERSION ?= 3.7.3
LOCALBIN ?= $(CURDIR)/bin
ENVTEST_ASSETS ?= $(LOCALBIN)/k8s/$(K8S_VERSION)-linux-amd64
KUBECTL ?= $(ENVTEST_ASSETS)/kubectl

CONTROLLER_GEN ?= go tool controller-gen

# The same flags as the Dockerfile: a static binary with the version stamped in.
GO_BUILD_FLAGS = -trimpath -ldflags "-s -w -X github.com/meetergo-operator/meetergo-operator/internal/version.Version=$(VERSION)"

GO_TEST_FLAGS ?= -race -count=1 -timeout 15m

.PHONY: all
all: build

# Targets of the install tooling (helm and friends) live beside their scripts.
-include hack/make/*.mk

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate the CRD and RBAC manifests from the code's markers (also into the Helm chart).
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases
	./hack/sync-chart.sh

.PHONY: generate
generate: ## Generate DeepCopy methods from the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: check-generated
check-generated: ## Fail when generated code, manifests or chart templates differ from what the markers produce.
	@sum() { find api config charts -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum; }; \
	before=$$(sum); \
	$(MAKE) -s generate manifests >/dev/null; \
	if [ "$$(sum)" != "$$before" ]; then \
	  echo "generated files were stale and have been regenerated; review and commit:"; \
	  git status --short -- api config charts; exit 1; \
	fi

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver, kubectl and etcd from the Go module proxy into bin/ (once).
	K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) BIN_DIR=$(ENVTEST_ASSETS) ./hack/build-control-plane.sh

.PHONY: test
test: vet check-generated envtest-assets helm build ## Vet, check generated files, run unit, envtest, install and end-to-end tests, and each fuzz target for 3s.
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) OPERATOR_BIN=$(LOCALBIN)/manager HELM=$(HELM) go test $(GO_TEST_FLAGS) ./...
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) FUZZTIME=3s ./hack/fuzz.sh

.PHONY: bench
bench: envtest-assets build ## Measure throughput, latency, scale and memory; rewrite docs/benchmarks.md (not part of make test).
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) go run ./test/bench -manager $(LOCALBIN)/manager

.PHONY: fuzz
fuzz: envtest-assets ## Run every fuzz target for FUZZTIME (default 10s); make test runs them for 3s each.
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) FUZZTIME=$${FUZZTIME:-10s} ./hack/fuzz.sh

.PHONY: soak
soak: envtest-assets build ## Long fault runs: event soak with SIGKILLs, registration chaos, fuzzing; figures into docs/ (not part of make test).
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) OPERATOR_BIN=$(LOCALBIN)/manager \
	  SOAK_EVENTS=$${SOAK_EVENTS:-3000} SOAK_KILLS=$${SOAK_KILLS:-8} SOAK_REPORT=$(CURDIR)/docs/soak-events.md \
	  go test -count=1 -timeout 60m -v ./test/soak/
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) CHAOS_CYCLES=$${CHAOS_CYCLES:-2000} CHAOS_REPORT=$(CURDIR)/docs/soak-registrations.md \
	  go test -count=1 -timeout 60m -run Chaos -v ./internal/controller/
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) FUZZTIME=$${FUZZTIME:-60s} FUZZ_REPORT=$(CURDIR)/docs/soak-fuzz.md ./hack/fuzz.sh

##@ Build

.PHONY: build
build: ## Build the operator binary into bin/manager (the binary the image ships).
	CGO_ENABLED=0 go build $(GO_BUILD_FLAGS) -o $(LOCALBIN)/manager ./cmd

# make run: the operator on this machine against the current kubeconfig's
# cluster. Flags come from the environment (see the README); ARGS adds more.
RECEIVER_PUBLIC_URL ?=
MEETERGO_API_URL ?= https://api.meetergo.com
DATA_DIR ?= $(CURDIR)/tmp/data
RUN_NAMESPACE ?= meetergo-operator-system
ALLOW_INSECURE_HTTP ?= false

.PHONY: run
run: manifests generate ## Run the operator against the current kubeconfig (RECEIVER_PUBLIC_URL, MEETERGO_API_URL, DATA_DIR, ALLOW_INSECURE_HTTP, ARGS).
	mkdir -p $(DATA_DIR)
	go run ./cmd --namespace=$(RUN_NAMESPACE) --receiver-public-url=$(RECEIVER_PUBLIC_URL) \
	  --meetergo-api-url=$(MEETERGO_API_URL) --data-dir=$(DATA_DIR) \
	  --allow-insecure-http=$(ALLOW_INSECURE_HTTP) --metrics-bind-address=0 $(ARGS)

.PHONY: demo
demo: envtest-assets build ## Run the operator's whole job locally: control plane, fake meetergo, operator, samples.
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) MANAGER=$(LOCALBIN)/manager go run ./hack/demo

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs (and every MeetergoWebhook) from the cluster.
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the operator with kustomize to the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -k config/default

.PHONY: undeploy
undeploy: ## Remove the operator deployed with kustomize.
	$(KUBECTL) delete --ignore-not-found -k config/default

.PHONY: clean
clean: ## Remove built binaries (keeps the control plane, which is costly to rebuild).
	rm -f $(LOCALBIN)/manager
