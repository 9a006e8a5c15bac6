"""The import graph of tenantry.* has no cycle (issue 12, part 5), read with `ast`, not by importing.

Top-level imports only: those inside functions run later, when every module is loaded. Imports under
`if TYPE_CHECKING:` never run and are excluded from the main check; a second check includes them,
since a cycle that only the type checker sees (context.py <-> supplied_secrets.py, until it was
broken) still says two modules cannot be understood one without the other.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import tenantry

ROOT = Path(tenantry.__file__).parent


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level_imports(body: list[ast.stmt], type_checking: bool) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if type_checking or not _is_type_checking(node.test):
                found += _top_level_imports(node.body, type_checking)
            found += _top_level_imports(node.orelse, type_checking)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _top_level_imports(block, type_checking)
    return found


def imports_of(path: Path, modules: set[str], *, root: Path = ROOT, type_checking: bool = False) -> set[str]:
    """The tenantry modules `path` imports when it is imported (and, with `type_checking`, when a
    type checker reads it)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _top_level_imports(ast.parse(path.read_text()).body, type_checking):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from a import b` imports a, and a.b too when b is a module.
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for candidate in candidates:
            # Importing a.b.c runs a and a.b first.
            parts = candidate.split(".")
            targets |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules
    targets.discard(name)
    return targets


def import_graph(*, type_checking: bool = False) -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(paths)
    return {name: imports_of(path, modules, type_checking=type_checking) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_relative_nested_and_type_checking_imports(tmp_path: Path) -> None:
    package = tmp_path / "tenantry" / "sub"
    package.mkdir(parents=True)
    module = package / "mod.py"
    module.write_text("from typing import TYPE_CHECKING\nfrom . import other\nfrom ..top import x\n"
                      "if TYPE_CHECKING:\n    from tenantry.hidden import y\n"
                      "def f():\n    from tenantry.late import z\n")
    modules = {"tenantry", "tenantry.sub", "tenantry.sub.other", "tenantry.top", "tenantry.hidden", "tenantry.late"}
    root = tmp_path / "tenantry"
    runtime = {"tenantry", "tenantry.sub", "tenantry.sub.other", "tenantry.top"}
    assert imports_of(module, modules, root=root) == runtime
    assert imports_of(module, modules, root=root, type_checking=True) == runtime | {"tenantry.hidden"}


def test_every_module_imports_on_its_own() -> None:
    for name in sorted(import_graph()):
        if name != "tenantry.__main__":  # runs the command line when imported
            importlib.import_module(name)


def test_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None


def test_no_import_cycle_even_for_the_type_checker() -> None:
    assert find_cycle(import_graph(type_checking=True)) is None
