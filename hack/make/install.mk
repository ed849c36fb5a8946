# Targets for the ways the operator is installed: the Helm chart
# (charts/meetergo-operator), and the helm binary its tests use.
# Included by the Makefile (`-include hack/make/*.mk`).

HELM_VERSION ?= 3.22.0
HELM_BIN_DIR ?= $(or $(LOCALBIN),$(CURDIR)/bin)/helm-v$(HELM_VERSION)
# test/install reads $HELM too, else looks in $(HELM_BIN_DIR).
HELM ?= $(HELM_BIN_DIR)/helm
CHART_DIR ?= charts/meetergo-operator
HELM_RELEASE ?= meetergo-operator
HELM_NAMESPACE ?= meetergo-operator-system
HELM_ARGS ?=

##@ Install (Helm chart)

.PHONY: helm
helm: ## Build the helm CLI from the Go module proxy into bin/helm-v<version>/ (once).
	HELM_VERSION=$(HELM_VERSION) BIN_DIR=$(HELM_BIN_DIR) ./hack/build-helm.sh

.PHONY: sync-chart
sync-chart: ## Regenerate the chart's CRD and RBAC templates from config/crd and config/rbac/role.yaml.
	./hack/sync-chart.sh

.PHONY: helm-lint
helm-lint: helm ## Lint the chart with its defaults.
	$(HELM) lint --strict $(CHART_DIR)

.PHONY: helm-package
helm-package: helm ## Package the chart into bin/charts/.
	$(HELM) package $(CHART_DIR) --destination $(or $(LOCALBIN),$(CURDIR)/bin)/charts

.PHONY: helm-deploy
helm-deploy: helm ## Install or upgrade the chart in the cluster of the current kubeconfig (HELM_ARGS="--set receiver.publicURL=...").
	$(HELM) upgrade --install $(HELM_RELEASE) $(CHART_DIR) --namespace $(HELM_NAMESPACE) --create-namespace $(HELM_ARGS)

.PHONY: helm-undeploy
helm-undeploy: helm ## Uninstall the chart's release (the CRD and the MeetergoWebhooks stay).
	$(HELM) uninstall $(HELM_RELEASE) --namespace $(HELM_NAMESPACE)

.PHONY: test-install
test-install: envtest-assets helm ## Run only the install tests (chart, kustomize, Argo CD health check).
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) HELM=$(HELM) go test $(GO_TEST_FLAGS) ./test/install/...
