"""Tenantry: a Kubernetes operator for white-label reselling of cluster capacity.

Regions (shared node pools) are sold wholesale to Resellers, who sell Plans retail to their
Tenants. See README.md for the map of the package and DESIGN.md for the API contract.
"""

__version__ = "0.1.0"
