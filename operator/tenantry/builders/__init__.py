"""Pure builders: inputs in, Kubernetes manifests (dicts) out. No I/O, no clock, no randomness.

The same inputs always give the same manifests, with deterministic names, so that the apply module
can compare them with what is in the cluster and write only what differs.
"""
