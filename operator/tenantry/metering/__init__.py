"""Metering and billing (DESIGN.md §4): one exporter per Region samples tenant quotas by watch,
integrates them over time, exports Prometheus metrics and emits priced CloudEvents billing records
that are never lost; `tenantry bill` turns records into statements.

Layers, each usable and tested alone:

- `pricing`    pure Decimal arithmetic: units, prices, licence tiers, the one rounding rule.
- `records`    CloudEvents 1.0 usage records with the deterministic id.
- `integrator` time integration of piecewise-constant tenant state into windows; checkpoint.
- `sampler`    list+watch of ResourceQuotas, Tenants, Plans, Resellers, Regions into tenant state.
- `sinks`      the on-disk spool and the `file:` / `http(s)://` sinks with batching and back-off.
- `exporter`   the custom Prometheus collector (a deleted tenant's series vanish with it).
- `meter`      the running exporter: wires the above to a clock and an event loop.
- `statements` `tenantry bill`: HTML and CSV statements from records (jinja2).
- `cli`        the `meter` and `bill` subcommands.
"""
