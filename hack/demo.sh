#!/usr/bin/env bash
# `make demo`: the whole platform on this machine in about a minute.
#
# Starts the local control plane (.dev/), the operator and a meter for region eu-west, applies
# examples/ (two regions, two resellers, plans, tenants — one of them refused), waits until every
# tenant is decided, creates a few pods so there is usage to meter, closes a short billing window,
# renders a statement, and prints a summary. Everything keeps running afterwards for you to explore;
# `hack/demo.sh stop` (or `make dev-down`) stops the operator and the meter by pid, then the control plane.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=.dev
PIDS=$DEV/demo-pids
VENV=.venv/bin
export PATH="${TENANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantry}/bin:$PATH"  # kubectl v1.20

stop() {
  if [ -f "$PIDS" ]; then
    while read -r pid name; do
      if kill -0 "$pid" 2>/dev/null; then kill "$pid" && echo "stopped $name (pid $pid)"; fi
    done < "$PIDS"
    rm -f "$PIDS"
  fi
}

if [ "${1:-}" = "stop" ]; then
  stop
  exit 0
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

stop  # a previous demo's processes
# `up` installs what the chart installs besides the operator: the CRDs and the platform ClusterRoles.
$VENV/python hack/controlplane.py up --dir $DEV >/dev/null
export KUBECONFIG=$PWD/$DEV/kubeconfig

mkdir -p $DEV/billing $DEV/statements
cat > $DEV/demo-config.yaml <<EOF
# The demo's operator configuration (the same keys as the Helm chart's \`config:\` values).
resyncSeconds: 300
defaultPlans:
  - name: trial
    spec:
      displayName: Trial
      quota: {cpu: 500m, memory: 512Mi, storage: 1Gi, pods: "5"}
      defaults: {cpu: 50m, memory: 64Mi}
      pricing: {currency: USD, monthly: "0.00"}
metering:
  enabled: false   # the demo runs its meter locally, below, instead of as a StatefulSet
  sink: file:$PWD/$DEV/billing/records.jsonl
EOF

say "Starting the operator (log: $DEV/operator.log)"
# Its namespace tenantry-system (made by `hack/controlplane.py up`) holds its leader-election Lease and
# the webhook's certificate, as in a cluster.
TENANTRY_CONFIG=$DEV/demo-config.yaml $VENV/tenantry run --bind-address 127.0.0.1 --health-port 18080 \
  --metrics-port 18000 --log-format plain > $DEV/operator.log 2>&1 &
echo "$! operator" >> "$PIDS"
for _ in $(seq 60); do curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1 && break; sleep 0.5; done

say "Applying examples/ (regions and resellers first: plans and tenants live in their namespaces)"
kubectl apply -f examples/10-regions.yaml -f examples/20-resellers.yaml
for ns in reseller-acme reseller-globex; do
  until kubectl get namespace "$ns" >/dev/null 2>&1; do sleep 0.5; done
done
kubectl apply -f examples/30-plans.yaml -f examples/40-tenants.yaml

say "Waiting until every tenant is admitted or refused"
for _ in $(seq 120); do
  undecided=$(kubectl get tenants -A -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Admitted")].status}{"\n"}{end}' \
    | awk 'NF < 2' | wc -l)
  [ "$undecided" -eq 0 ] && break
  sleep 0.5
done

say "Starting the meter for eu-west (metrics: http://127.0.0.1:19100/metrics)"
$VENV/tenantry meter --region eu-west --sink "file:$PWD/$DEV/billing/records.jsonl" --interval 1s --window 10s \
  --port 19100 --bind-address 127.0.0.1 --spool $DEV/meter-spool --config $DEV/demo-config.yaml \
  > $DEV/meter.log 2>&1 &
echo "$! meter" >> "$PIDS"

# Some usage to meter: pods stay Pending (no scheduler here), and the quota still counts their requests.
for tenant in acme--bakery globex--apex-labs; do
  kubectl -n "$tenant" create deployment web --image=nginx --replicas=2 >/dev/null 2>&1 || true
  kubectl -n "$tenant" run worker --image=busybox --restart=Never \
    --overrides='{"spec":{"containers":[{"name":"worker","image":"busybox","resources":{"requests":{"cpu":"250m","memory":"256Mi"}}}]}}' \
    >/dev/null 2>&1 || true
done

say "Regions, resellers, plans and tenants"
kubectl get regions
echo
kubectl get resellers
echo
kubectl get plans -A
echo
kubectl get tenants -A

say "Refused tenants and why"
kubectl get tenants -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\t"}{.status.conditions[?(@.type=="Admitted")].status}{"\t"}{.status.conditions[?(@.type=="Admitted")].reason}{"\t"}{.status.conditions[?(@.type=="Admitted")].message}{"\n"}{end}' \
  | awk -F'\t' '$2 == "False" {print "  " $1 ": " $3 " - " $4}'

say "Hosts and certificate expiry per tenant"
kubectl get tenants -A -o jsonpath='{range .items[*]}{range .status.certificates[*]}{.host}{"\t"}{.notAfter}{"\t"}{.issuer}{"\n"}{end}{end}' \
  | awk -F'\t' 'NF {printf "  %-40s valid until %s (%s)\n", $1, $2, $3}'

say "Inside a tenant namespace (acme--bakery)"
kubectl -n acme--bakery get resourcequota,limitrange,networkpolicy,rolebinding,ingress,secret -l app.kubernetes.io/managed-by=tenantry

say "Metering: waiting for the first closed 10 s window"
for _ in $(seq 60); do
  [ -s $DEV/billing/records.jsonl ] && break
  sleep 1
done
curl -fsS http://127.0.0.1:19100/metrics | grep -E '^tenantry_(tenant_resource_used|charge_total|reseller_licenses)' | head -n 12 || true
echo "  billing records so far: $(wc -l < $DEV/billing/records.jsonl 2>/dev/null || echo 0)"

say "Statement for acme (HTML and CSV in $DEV/statements)"
$VENV/tenantry bill $DEV/billing/records.jsonl --reseller acme --from "$(date -u +%Y-%m-01)" --out $DEV/statements
ls $DEV/statements
csv=$(ls $DEV/statements/*.csv 2>/dev/null | head -n1 || true)
[ -n "$csv" ] && head -n 15 "$csv"

say "The demo keeps running"
cat <<EOF
  export KUBECONFIG=$PWD/$DEV/kubeconfig PATH=$(dirname "$(command -v kubectl)"):\$PATH
  kubectl get tenants -A                      # try: kubectl patch reseller globex --type merge -p '{"spec":{"licenses":4}}'
  kubectl get tenant -n reseller-acme bakery -o yaml
  hack/demo.sh stop && make dev-down          # stop the operator and meter, then the control plane
EOF
