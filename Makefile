# Tenantry developer entry points. `make help` lists them.
#
#   make test                          unit + integration tests against a private local control plane
#   USE_EXISTING_CLUSTER=1 make test   the same against the cluster of $KUBECONFIG (nothing started)
#   make dev-up / make dev-down        a long-lived local control plane in .dev/ for manual work

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
VENV_STAMP := $(VENV)/.installed
DEV_DIR := .dev
PYTEST_ARGS ?=
USE_EXISTING_CLUSTER ?=
# Root for apt-get when make is run by a normal user.
AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help venv control-plane test-tools dev-up dev-down test test-newest-kopf lint demo kind-up kind-down manifests clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

venv: $(VENV_STAMP) ## create .venv and install the package with its test extras

# Reinstalls only when pyproject.toml changes (the stamp is newer otherwise).
$(VENV_STAMP): pyproject.toml
	@if ! "$(PYTHON)" -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	  pkg="$$(basename "$(PYTHON)")-venv"; \
	  echo "python -m venv needs Debian's $$pkg; installing it"; \
	  $(AS_ROOT) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(AS_ROOT) apt-get install -y -qq --no-install-recommends "$$pkg"; \
	fi
	@test -x $(VENV)/bin/python || "$(PYTHON)" -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	@touch $@

control-plane: ## build (once, cached in ~/.cache/tenantry) etcd, kube-apiserver, kube-controller-manager, kubectl v1.20
	hack/build-control-plane.sh

dev-up: venv control-plane ## start the local control plane in .dev/ and install crds/
	$(VENV)/bin/python hack/controlplane.py up --dir $(DEV_DIR)
	@echo
	@echo "export KUBECONFIG=$(CURDIR)/$(DEV_DIR)/kubeconfig"

dev-down: ## stop the demo's operator and meter, then the .dev/ control plane, and remove its data
	@hack/demo.sh stop
	@if [ -d $(DEV_DIR) ]; then $(VENV)/bin/python hack/controlplane.py down --dir $(DEV_DIR); fi

# pytest's exit status is the recipe's; 5 (no tests collected) is reported as the failure it is.
test: venv test-tools $(if $(filter 1 true yes,$(USE_EXISTING_CLUSTER)),,control-plane) ## run the tests (USE_EXISTING_CLUSTER=1 uses $KUBECONFIG)
	@if [ -n "$(filter 1 true yes,$(USE_EXISTING_CLUSTER))" ] && [ -z "$${KUBECONFIG:-}" ]; then \
	  echo "USE_EXISTING_CLUSTER=1 needs KUBECONFIG pointing at the cluster" >&2; exit 2; \
	fi
	@rc=0; $(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure" >&2; fi; \
	exit $$rc

test-newest-kopf: venv test-tools control-plane ## the unit tests and a journey on the newest kopf release (CI runs it too)
	hack/test-newest-kopf

# Debian packages the tests use besides the control plane: promtool (checks the alert rules).
test-tools: ## install the Debian packages the tests need (promtool from `prometheus`)
	@command -v promtool >/dev/null || { \
	  echo "installing Debian's prometheus package for promtool"; \
	  $(AS_ROOT) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(AS_ROOT) apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	}

manifests: venv ## regenerate the CRDs (from the models), the dashboard JSON and manifests/install.yaml
	$(VENV)/bin/python hack/render-crds
	$(VENV)/bin/python hack/render-dashboard
	$(VENV)/bin/python hack/render-manifests

# A real cluster with pods, ingress-nginx and cert-manager, for users with Docker, kind and kubectl;
# and a member cluster beside it for the Region of examples/15-member-cluster-region.yaml (docs/multi-cluster.md).
KIND_CLUSTER ?= tenantry
KIND_MEMBER ?= tenantry-ap-southeast
MEMBER_SECRET ?= ap-southeast-kubeconfig
IMAGE ?= tenantry:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
INGRESS_NGINX_MANIFEST ?= https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.11.3/deploy/static/provider/kind/deploy.yaml
CERT_MANAGER_MANIFEST ?= https://github.com/cert-manager/cert-manager/releases/download/v1.16.2/cert-manager.yaml
CONTROL_CTX := --context kind-$(KIND_CLUSTER)
MEMBER_CTX := --context kind-$(KIND_MEMBER)
kind-up: ## kind control cluster (hack/kind-cluster.yaml) + a member cluster (hack/kind-member-cluster.yaml), ingress-nginx, cert-manager, Tenantry
	kind get clusters | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER) --config hack/kind-cluster.yaml
	kind get clusters | grep -qx '$(KIND_MEMBER)' || kind create cluster --name $(KIND_MEMBER) --config hack/kind-member-cluster.yaml
	@# `kind create cluster` switches the current context to the cluster it made: every command below names its own.
	kubectl config use-context kind-$(KIND_CLUSTER)
	kubectl $(CONTROL_CTX) apply -f $(INGRESS_NGINX_MANIFEST)
	kubectl $(CONTROL_CTX) apply -f $(CERT_MANAGER_MANIFEST)
	docker build -t $(IMAGE) .
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)
	kubectl $(CONTROL_CTX) apply --server-side -f manifests/install.yaml
	@# The member gets what docs/multi-cluster.md lists, no CRDs and no operator: ingress-nginx for its
	@# tenants, the platform ClusterRoles, and the operator's ClusterRole bound to a ServiceAccount of its own.
	kubectl $(MEMBER_CTX) apply -f $(INGRESS_NGINX_MANIFEST)
	kubectl $(MEMBER_CTX) apply --server-side -f charts/tenantry/files/platform-clusterroles.yaml \
	  -f charts/tenantry/files/operator-clusterrole.yaml -f charts/tenantry/files/member-nodes-clusterrole.yaml
	kubectl $(MEMBER_CTX) create namespace tenantry-system --dry-run=client -o yaml | kubectl $(MEMBER_CTX) apply -f -
	kubectl $(MEMBER_CTX) -n tenantry-system create serviceaccount tenantry-operator --dry-run=client -o yaml \
	  | kubectl $(MEMBER_CTX) apply -f -
	kubectl $(MEMBER_CTX) create clusterrolebinding tenantry-operator --clusterrole=tenantry-operator \
	  --serviceaccount=tenantry-system:tenantry-operator --dry-run=client -o yaml | kubectl $(MEMBER_CTX) apply -f -
	kubectl $(MEMBER_CTX) create clusterrolebinding tenantry-member-nodes --clusterrole=tenantry-member-nodes \
	  --serviceaccount=tenantry-system:tenantry-operator --dry-run=client -o yaml | kubectl $(MEMBER_CTX) apply -f -
	@# A long-lived token the platform revokes by deleting this Secret (rotation: docs/multi-cluster.md).
	printf '%s\n' 'apiVersion: v1' 'kind: Secret' 'type: kubernetes.io/service-account-token' \
	  'metadata: {name: tenantry-operator-token, namespace: tenantry-system,' \
	  '           annotations: {kubernetes.io/service-account.name: tenantry-operator}}' | kubectl $(MEMBER_CTX) apply -f -
	@for i in $$(seq 60); do \
	  [ -n "$$(kubectl $(MEMBER_CTX) -n tenantry-system get secret tenantry-operator-token -o jsonpath='{.data.token}')" ] && break; \
	  sleep 1; \
	done
	@# The member's kubeconfig as seen from the control cluster's pods (the Docker network `kind`), with the
	@# ServiceAccount's token instead of kind's admin certificate, into the Secret the Region names.
	@kubeconfig=$$(mktemp); trap 'rm -f "$$kubeconfig"' EXIT; \
	kind get kubeconfig --internal --name $(KIND_MEMBER) > "$$kubeconfig"; \
	token=$$(kubectl $(MEMBER_CTX) -n tenantry-system get secret tenantry-operator-token -o jsonpath='{.data.token}' | base64 -d); \
	test -n "$$token" || { echo "the member's token controller filled no token in tenantry-operator-token" >&2; exit 1; }; \
	kubectl --kubeconfig "$$kubeconfig" config set-credentials tenantry-operator --token="$$token" >/dev/null; \
	kubectl --kubeconfig "$$kubeconfig" config set-context kind-$(KIND_MEMBER) --user=tenantry-operator >/dev/null; \
	kubectl --kubeconfig "$$kubeconfig" config unset users.kind-$(KIND_MEMBER) >/dev/null; \
	kubectl $(CONTROL_CTX) -n tenantry-system create secret generic $(MEMBER_SECRET) --from-file=value="$$kubeconfig" \
	  --dry-run=client -o yaml | kubectl $(CONTROL_CTX) apply -f -; \
	echo "secret tenantry-system/$(MEMBER_SECRET) in kind-$(KIND_CLUSTER): the kubeconfig of $(KIND_MEMBER)"
	kubectl $(CONTROL_CTX) -n tenantry-system rollout status deployment/tenantry-operator --timeout=180s
	kubectl $(CONTROL_CTX) apply -f examples/15-member-cluster-region.yaml
	kubectl $(CONTROL_CTX) -n ingress-nginx wait --for=condition=Available deployment/ingress-nginx-controller --timeout=300s
	kubectl $(MEMBER_CTX) -n ingress-nginx wait --for=condition=Available deployment/ingress-nginx-controller --timeout=300s
	kubectl $(CONTROL_CTX) -n cert-manager wait --for=condition=Available deployment --all --timeout=300s
	kubectl $(CONTROL_CTX) wait --for=condition=ClusterReachable region/ap-southeast --timeout=120s
	@echo
	@echo "kind clusters $(KIND_CLUSTER) (control) and $(KIND_MEMBER) (member, Region ap-southeast) are up."
	@echo "  kubectl get region ap-southeast -o yaml       # status.cluster and ClusterReachable"
	@echo "The tests run their own operator: stop the installed one, then"
	@echo "  kubectl -n tenantry-system scale deployment/tenantry-operator --replicas=0"
	@echo "  USE_EXISTING_CLUSTER=1 KUBECONFIG=$$HOME/.kube/config make test"

kind-down: ## delete the kind clusters (control and member)
	kind delete cluster --name $(KIND_MEMBER)
	kind delete cluster --name $(KIND_CLUSTER)

lint: venv ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

demo: venv control-plane ## the platform on this machine: control plane, operator, meter, examples/, a summary
	hack/demo.sh

clean: ## stop the .dev/ control plane; remove .dev/ and caches (keeps .venv and the binary cache)
	@if [ -d $(DEV_DIR) ] && [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python hack/controlplane.py down --dir $(DEV_DIR); fi
	rm -rf $(DEV_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist operator/*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
