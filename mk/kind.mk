# The kind path: a real cluster on a laptop. Included by the Makefile; also runs stand-alone
# (`make -f mk/kind.mk kind-up`). One sequence: `make kind-up deploy e2e` (e2e applies the examples
# first). `make image` builds the release image for both platforms (push with IMAGE_PUSH=1).
# Every target needs a Docker engine and fails fast, with a clear message, without one.

HELM ?= .tools/bin/helm
KUBECTL ?= .tools/bin/kubectl
KIND ?= kind
DOCKER ?= docker
PYTHON ?= python3
# The project's venv (`make setup`): the examples' placeholder Secrets come from its models.
VENV_PYTHON ?= .venv/bin/python
KIND_CLUSTER ?= observatory
IMAGE_REPOSITORY ?= observatory
IMAGE_TAG ?= dev
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_PUSH ?=
OPERATOR_NAMESPACE ?= observatory-system
MONITORING_NAMESPACE ?= monitoring
# The release name is also the `release` label kube-prometheus-stack's ruleSelector matches,
# which is the chart's default ruleSelectorLabels.
KPS_RELEASE ?= kube-prometheus-stack
KPS_VERSION ?= 88.1.3
KPS_REPO ?= https://prometheus-community.github.io/helm-charts
E2E_TIMEOUT ?= 180s
# The end-to-end alert (an absent rule: a fresh cluster has no traffic) and its namespace.
E2E_DIR ?= mk/e2e
E2E_NAMESPACE ?= observatory-e2e
E2E_ALERT ?= E2eNoTraffic
# Stacks need the ClickHouse operator and cert-manager for a dedicated Langfuse; add them when installed.
E2E_KINDS ?= alertrules,slos
PROMETHEUS_LOCAL_PORT ?= 19090
ALERTMANAGER_LOCAL_PORT ?= 19093

KIND_CONTEXT := kind-$(KIND_CLUSTER)
# Custom-resource examples only (examples/tests holds promtool tests, not Kubernetes objects).
EXAMPLE_DIRS ?= $(filter-out examples/tests,$(wildcard examples/*))
EXAMPLE_NAMESPACES ?= $(sort $(shell grep -rhoE '^  namespace: *[a-z0-9-]+' $(EXAMPLE_DIRS) $(E2E_DIR) 2>/dev/null | awk '{print $$2}'))

.PHONY: kind-check kind-up kind-down image deploy apply-examples e2e

kind-check:
	@command -v $(DOCKER) >/dev/null 2>&1 && timeout 10 $(DOCKER) info >/dev/null 2>&1 || { \
	  echo "error: this target needs a Docker engine; not available on this machine ('$(DOCKER) info' failed)." >&2; \
	  echo "       The kind path (kind-up, deploy, apply-examples, e2e) runs on a workstation with Docker; CI does not use it." >&2; \
	  exit 2; }
	@command -v $(KIND) >/dev/null 2>&1 || { \
	  echo "error: this target needs kind (https://kind.sigs.k8s.io); '$(KIND)' is not on PATH." >&2; exit 2; }
	@test -x $(HELM) && test -x $(KUBECTL) || { \
	  echo "error: $(HELM) and $(KUBECTL) are missing; run 'make setup' first." >&2; exit 2; }

kind-up: kind-check
	@$(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || $(KIND) create cluster --name $(KIND_CLUSTER) --wait 120s
	$(HELM) --kube-context $(KIND_CONTEXT) upgrade --install $(KPS_RELEASE) kube-prometheus-stack \
	  --repo $(KPS_REPO) --version $(KPS_VERSION) \
	  --namespace $(MONITORING_NAMESPACE) --create-namespace \
	  --set grafana.enabled=false --set alertmanager.enabled=true \
	  --set-json 'alertmanager.alertmanagerSpec.alertmanagerConfigSelector={"matchLabels":{"app.kubernetes.io/managed-by":"observatory"}}' \
	  --set-json 'alertmanager.alertmanagerSpec.alertmanagerConfigNamespaceSelector={}' \
	  --wait --timeout 10m

kind-down: kind-check
	$(KIND) delete cluster --name $(KIND_CLUSTER)

image: kind-check
	$(DOCKER) buildx build --platform $(IMAGE_PLATFORMS) -t $(IMAGE_REPOSITORY):$(IMAGE_TAG) $(if $(IMAGE_PUSH),--push,) .

deploy: kind-check
	$(DOCKER) build -t $(IMAGE_REPOSITORY):$(IMAGE_TAG) .
	$(KIND) load docker-image $(IMAGE_REPOSITORY):$(IMAGE_TAG) --name $(KIND_CLUSTER)
	# helm installs crds/ only on first install; apply keeps them current on re-deploys.
	$(KUBECTL) --context $(KIND_CONTEXT) apply --server-side -f charts/observatory/crds/
	$(HELM) --kube-context $(KIND_CONTEXT) upgrade --install observatory charts/observatory \
	  --namespace $(OPERATOR_NAMESPACE) --create-namespace \
	  --set image.repository=$(IMAGE_REPOSITORY) --set image.tag=$(IMAGE_TAG) --set image.pullPolicy=Never \
	  --set serviceMonitor.enabled=true \
	  --wait --timeout 5m

apply-examples: kind-check
	@for ns in $(EXAMPLE_NAMESPACES); do \
	  $(KUBECTL) --context $(KIND_CONTEXT) create namespace $$ns --dry-run=client -o yaml \
	    | $(KUBECTL) --context $(KIND_CONTEXT) apply -f -; done
	$(VENV_PYTHON) mk/example_secrets.py $(EXAMPLE_DIRS) $(E2E_DIR) | $(KUBECTL) --context $(KIND_CONTEXT) apply -f -
	$(KUBECTL) --context $(KIND_CONTEXT) apply $(addprefix -f ,$(EXAMPLE_DIRS) $(E2E_DIR))

e2e: kind-check apply-examples
	$(KUBECTL) --context $(KIND_CONTEXT) wait --for=condition=Ready $(E2E_KINDS) --all --all-namespaces --timeout=$(E2E_TIMEOUT)
	$(KUBECTL) --context $(KIND_CONTEXT) get observabilitystacks,alertrules,slos --all-namespaces
	@mkdir -p .tools
	$(KUBECTL) --context $(KIND_CONTEXT) get prometheusrules --all-namespaces \
	  -l app.kubernetes.io/managed-by=observatory -o json > .tools/e2e-prometheusrules.json
	$(KUBECTL) --context $(KIND_CONTEXT) -n $(E2E_NAMESPACE) get alertmanagerconfigs -o json > .tools/e2e-alertmanagerconfigs.json
	@set -e; \
	$(KUBECTL) --context $(KIND_CONTEXT) -n $(MONITORING_NAMESPACE) port-forward \
	  svc/$(KPS_RELEASE)-prometheus $(PROMETHEUS_LOCAL_PORT):9090 >/dev/null 2>&1 & pf=$$!; \
	$(KUBECTL) --context $(KIND_CONTEXT) -n $(MONITORING_NAMESPACE) port-forward \
	  svc/$(KPS_RELEASE)-alertmanager $(ALERTMANAGER_LOCAL_PORT):9093 >/dev/null 2>&1 & af=$$!; \
	trap 'kill $$pf $$af' EXIT; \
	$(PYTHON) mk/check_rules_loaded.py .tools/e2e-prometheusrules.json \
	  http://127.0.0.1:$(PROMETHEUS_LOCAL_PORT) --timeout 180; \
	$(PYTHON) mk/check_alert_routed.py .tools/e2e-alertmanagerconfigs.json $(E2E_ALERT) \
	  http://127.0.0.1:$(PROMETHEUS_LOCAL_PORT) http://127.0.0.1:$(ALERTMANAGER_LOCAL_PORT) --timeout 300
