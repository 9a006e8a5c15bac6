"""Compact copies of API objects, for the Store: one copy of each string, however many objects hold it.

An object as `json.loads` makes it holds its own copy of every string: of every key ("metadata",
"app.kubernetes.io/managed-by", ...), of every label value (a tenant's reseller and name, in each of its
ten children), of the namespace name, kind and apiVersion, the ClusterRole names, the reseller's CA
certificate in every TLS Secret of its tenants. Those copies were more than half of what the Store
held (hack/bench_store.py: 28 of 51 kB per tenant; issue 15, operator RSS at 10,000 tenants).
`compact` copies an object with every string replaced by the interpreter's one copy of it
(`sys.intern`); an interned string is freed with the last object that holds it, as any other.

Values that differ in every object, and in every version of one (uid, resourceVersion, the spec hash),
are kept as they are: interning them would only fill the interpreter's table of interned strings.

The copy is deep, of dicts and lists: the Store shares no container with the event it was given (which
the informer's callbacks get too), nor one stored object with another. Strings are immutable, so
sharing them changes nothing for a reader.
"""

from __future__ import annotations

import sys
from typing import Any

# The spec hash is controller/apply.py's SPEC_HASH (apply imports the Store, so it cannot be imported here).
UNIQUE_VALUES = frozenset({"uid", "resourceVersion", "tenantry.dev/spec-hash"})

_intern = sys.intern


def compact(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, strings, numbers) whose strings are interned, except
    the values of `UNIQUE_VALUES` keys; anything else (a tuple, a number) is taken as it is."""
    kind = type(value)
    if kind is str:
        return _intern(value)
    if kind is dict:
        return {(_intern(k) if type(k) is str else k): (v if k in UNIQUE_VALUES and type(v) is str else compact(v))
                for k, v in value.items()}
    if kind is list:
        return [compact(v) for v in value]
    return value
