"""Tenantry's admission webhook (DESIGN.md §3 "Admission webhook"): validating rules, and one mutating rule.

- `registry`: the rules (API group and kind -> validator -> `Verdict`), each with its failure policy and
  timeout, and the view of the operator's in-memory picture that validators read. Start there to add a rule.
- `ingress`, `tenantry_kinds`: Tenantry's own rules (tenant Ingresses and HTTPRoutes; Tenants and Plans
  checked at `kubectl apply`). Other rule modules are listed in `registry.RULE_MODULES`.
- `finalizer`: the mutating rule, a new Tenant stored with its finalizer (saving the operator that write).
- `configuration`: the Validating- and MutatingWebhookConfiguration built from the rules (pure).
- `certificate`: the serving certificate and its CA (pure decisions; the Secret is written by the controller).
- `server`: the HTTPS endpoint the API server calls (aiohttp), with its metrics.

The running parts (certificate Secret, registration, self-check) are in `tenantry.controller.webhook`.
"""
