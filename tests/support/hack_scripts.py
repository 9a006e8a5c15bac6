"""The hack/ scripts (no .py suffix) imported as modules, so that tests run the very code users run
(`make manifests`, the chart renderer)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


@cache
def hack_script(name: str) -> ModuleType:
    """hack/<name> as a module (imported once per session)."""
    path = REPO / "hack" / name
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
