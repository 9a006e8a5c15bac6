"""Libraries through their public API only: no private module of a dependency, no monkey-patching.

A private module (kopf._cogs, aiohttp's internals) may change in any patch release; the operator
must run on the newest kopf as well as the pinned one. Checked over every module of the package and
the hack/ scripts, from their source (ast), so that a new file is covered the day it is added.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "operator" / "tenantry").rglob("*.py"), *(ROOT / "hack").rglob("*.py")])
OWN = {"tenantry", "__future__"}


def _private_part(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] in OWN:
        return None
    return next((p for p in parts[1:] if p.startswith("_") and not p.startswith("__")), None)


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    imported: dict[str, str] = {}  # local name -> third-party module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _private_part(alias.name):
                    found.append(f"{path.name}:{node.lineno}: import {alias.name}")
                if alias.name.split(".")[0] not in OWN:
                    imported[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _private_part(node.module):
                found.append(f"{path.name}:{node.lineno}: from {node.module} import ...")
            if node.module.split(".")[0] not in OWN:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.name}:{node.lineno}: from {node.module} import {alias.name}")
                    imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else []
        for target in targets:
            # `kopf.something = ...` or `watching.infinite_watch = ...`: patching a library's module.
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                    and target.value.id in imported and _is_module(imported[target.value.id]):
                found.append(f"{path.name}:{node.lineno}: assigns {target.value.id}.{target.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr" \
                and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in imported \
                and _is_module(imported[node.args[0].id]):
            found.append(f"{path.name}:{node.lineno}: setattr on {node.args[0].id}")
    return found


def _is_module(dotted: str) -> bool:
    """Whether a dotted name imported from a library is a module (patching it is monkey-patching),
    not a class or function (whose instances the operator may configure)."""
    import importlib

    try:
        importlib.import_module(dotted)
    except ImportError:
        return False
    return True


def test_no_private_module_of_a_dependency_and_no_monkey_patching() -> None:
    problems = [v for path in SOURCES for v in _violations(path)]
    assert not problems, "private imports or patched libraries:\n" + "\n".join(problems)


def test_the_check_sees_what_it_must_refuse(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import kopf\nfrom kopf._cogs.clients import watching\nimport aiohttp.client_reqrep as r\n"
                      "watching.infinite_watch = None\nkopf.on = None\nfrom kopf import _core\n"
                      "settings = kopf.OperatorSettings()\nsettings.scanning.disabled = True\n")
    found = _violations(sample)
    assert [f.split(": ", 1)[1] for f in found] == [
        "from kopf._cogs.clients import ...", "from kopf import _core", "assigns watching.infinite_watch",
        "assigns kopf.on"], found
