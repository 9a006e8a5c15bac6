"""The operator at run time: watches feed a Store and an AdmissionBook, a work queue runs one
reconcile per kind (tenant.py, reseller.py, region.py, plan.py), and apply.py is the one module
that writes. `handlers.py` wires it into kopf."""
