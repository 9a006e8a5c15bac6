"""How the Store holds objects in little memory (issue 15: operator RSS <= 500 MB at 10,000 tenants).

Two measures, each measured with hack/bench_store.py (bytes per tenant, one tenant being its Tenant and
its ten children; the fill's total by tracemalloc, the Store's part by structure):

1. `compact`: one copy of each string, however many objects hold it. An object as `json.loads` makes it
   holds its own copy of every key ("metadata", "app.kubernetes.io/managed-by", ...), of every label
   value (a tenant's reseller and name, in each of its ten children), of the namespace name, kind and
   apiVersion, the ClusterRole names, the reseller's CA certificate in every TLS Secret of its tenants.
   Those copies were more than half of what the Store held (28 of 51 kB per tenant). `compact` copies
   an object with every string replaced by the interpreter's one copy of it (`sys.intern`); an
   interned string is freed with the last object that holds it, as any other (but on Python 3.12:
   there, only keys are interned, see `_intern_value`). Values that differ in
   every object, and in every version of one (uid, resourceVersion, the spec hash), are left as they
   are: interning them would only fill the interpreter's table (measured: some 6 kB per tenant more).
   The copy is deep: the Store shares no dict or list with the event it was given (which the informer's
   callbacks get too), nor one stored object with another.
2. `Packed`: the children (but Secrets) as their JSON text. What remains of an object after (1) is mostly
   dicts (184 bytes for up to five keys); the text of a child is 40% of its compact dicts. The operator
   reads a child only to compare it with what it wants, when its owner is reconciled: each `get` parses
   the text (some 15-20 us for a child, against a reconcile's milliseconds) and hands out a fresh object.

Per tenant, 2,000 tenants on Python 3.11: what the Store holds 39.0 -> 26.9 (1) -> 17.9 kB (2); all the
operator keeps (tracemalloc) 61.4 -> 34.3 -> 25.3 kB; RSS 66.5 -> 35.5 -> 25.9 kB. The cost is CPU when
an object is stored (some 0.3-0.7 ms more per tenant, its 11 objects) and read (0.15 ms to read each once).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenantry.naming import PLURALS

# The spec hash is controller/apply.py's SPEC_HASH (apply imports the Store, so it cannot be imported here).
UNIQUE_VALUES = frozenset({"uid", "resourceVersion", "tenantry.dev/spec-hash"})

# An interned string is freed when nothing holds it any more, as any other - but not on Python 3.12,
# where sys.intern makes strings immortal (gh-113993; mortal again since 3.13). There only keys are
# interned, a vocabulary that does not grow with time; values (condition messages, timestamps, renewed
# certificates) would stay in memory for good, one copy of each that ever was. (`str(s) is s`.)
_intern_key = sys.intern
_intern_value = str if sys.version_info[:2] == (3, 12) else sys.intern


def compact(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, strings, numbers) whose strings are interned, except
    the values of `UNIQUE_VALUES` keys; anything else (a tuple, a number) is taken as it is."""
    kind = type(value)
    if kind is str:
        return _intern_value(value)
    if kind is dict:
        return {(_intern_key(k) if type(k) is str else k): (v if k in UNIQUE_VALUES and type(v) is str
                                                            else compact(v))
                for k, v in value.items()}
    if kind is list:
        return [compact(v) for v in value]
    return value


# -- children as text --------------------------------------------------------------------------------


def kept_as_text(kind: str) -> bool:
    """Whether the Store keeps objects of `kind` as their JSON text (`Packed`): the children the operator
    makes, which it reads only to compare them with what it wants (a reconcile of their owner), and which
    as text take some 40% of what they take as compact dicts (hack/bench_store.py). Not Tenantry's own
    kinds, read everywhere and often, nor Secrets: their text would hold again the CA certificate that
    `compact` holds once for all the reseller's tenants, and be no smaller."""
    return kind not in PLURALS and kind != "Secret"


@dataclass(frozen=True, slots=True)
class Packed:
    """An object as its compact JSON text, without its resourceVersion, which the Store reads on every
    event and write of the object (`version`) and so keeps beside the text, never parsing it for that."""

    version: str | None
    text: bytes


def pack(obj: Mapping[str, Any]) -> Packed:
    meta = obj["metadata"]
    rest = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return Packed(meta.get("resourceVersion"), json.dumps(rest, separators=(",", ":")).encode())


def unpack(packed: Packed) -> dict[str, Any]:
    """A fresh object (a dict of its own: changing it changes nothing in the Store)."""
    obj: dict[str, Any] = json.loads(packed.text)
    if packed.version is not None:
        obj["metadata"]["resourceVersion"] = packed.version
    return obj
