"""The package's shape: no import cycle, no upward import, and a cold start that stays light.

The import graph is built from the installed package's source (``memorch.__path__`` and its
sub-packages), counting every import: top-level, inside functions and under ``TYPE_CHECKING``,
since a type-only edge still ties two modules' designs together. ``LAYERS`` is the one place
the layer order is written (docs/internals.md shows it); a module may import from its own layer
and the ones before it, never from a later one.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import memorch
import memorch.storage
import memorch.tools

# Lowest first. A module belongs to the entry with the longest prefix of its name.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("memorch.errors", "memorch._version", "memorch._atomic"),  # vocabulary, no imports of ours
    ("memorch.storage",),  # the ledger and the derived indexes; knows no LLM, no MCP
    # values, checks, results, settings
    (
        "memorch.domain",
        "memorch.results",
        "memorch.config",
        "memorch._settings",
        "memorch._search_weights",
        "memorch._paths",
    ),
    ("memorch.models",),  # LLM client, resilience, embedders
    ("memorch.engine",),  # the Engine: components, the Store (owner of writes), workers, debouncers
    ("memorch.retrieval", "memorch.maintenance"),  # search, graph reads, timeline; reindex, bulk, export, backup
    ("memorch.inference",),  # planning, background inference (takes the engine)
    ("memorch.api",),  # AsyncMemory and Memory
    ("memorch.importers", "memorch.tools"),  # other servers' exports; the MCP tools
    ("memorch.serve",),  # MCP app, HTTP edge, identities, web UI
    ("memorch.cli",),  # every command
    ("memorch", "memorch.__main__"),  # the public surface re-exports from below
)
HEAVY = ("lancedb", "numpy", "litellm", "kuzu", "pyarrow", "onnxruntime")


def installed_roots() -> dict[str, Path]:
    """Package name -> source directory, wherever the package is installed (editable or wheel)."""
    return {
        "memorch": Path(memorch.__path__[0]),
        "memorch.tools": Path(memorch.tools.__path__[0]),
        "memorch.storage": Path(memorch.storage.__path__[0]),
    }


def module_files(roots: dict[str, Path]) -> dict[str, Path]:
    """Every module's dotted name -> its file. A sub-tree mapped to a package of its own (the
    card's ``tools/`` and ``storage/``) is not counted twice."""
    files: dict[str, Path] = {}
    for package, root in sorted(roots.items(), key=lambda kv: len(kv[0])):
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join([package, *parts])] = path
    return files


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    found = set()
    for alias in node.names:
        child = f"{base}.{alias.name}"
        # ``from pkg import mod`` depends on the module; ``from pkg import Name`` on the package.
        if child in known:
            found.add(child)
        elif base in known:
            found.add(base)
    return found


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports, anywhere in its source."""
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges |= _targets(module, is_package, node, known)
        edges.discard(module)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected sets of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_of(module: str) -> int:
    best, layer = -1, -1
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), number
    assert layer >= 0, f"{module} is in no layer: add it to LAYERS"
    return layer


def upward_edges(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )


# -- the installed package ----------------------------------------------------------------------


def test_the_installed_package_has_no_import_cycle_and_no_upward_import() -> None:
    graph = import_graph(module_files(installed_roots()))
    assert len(graph) > 80  # the whole package was read, not an empty folder
    assert cycles(graph) == []
    assert upward_edges(graph) == []


def _copy_of_the_package(into: Path) -> dict[str, Path]:
    roots = {}
    for package, source in installed_roots().items():
        roots[package] = into / package
        shutil.copytree(source, roots[package], ignore=shutil.ignore_patterns("__pycache__", "_weights", "ui_static"))
    return roots


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_a_planted_upward_import_is_caught_as_a_cycle_and_a_breach(tmp_path: Path) -> None:
    roots = _copy_of_the_package(tmp_path)
    # domain is below api, and api imports domain: a type-only import upward closes a cycle.
    upward = "\nif TYPE_CHECKING:\n    from memorch.api import _memory\n"
    _append(roots["memorch"] / "domain" / "_validation.py", upward)
    graph = import_graph(module_files(roots))
    assert any({"memorch.domain._validation", "memorch.api._memory"} <= set(c) for c in cycles(graph))
    assert upward_edges(graph) == ["memorch.domain._validation -> memorch.api._memory"]


def test_a_planted_cycle_inside_one_layer_is_caught(tmp_path: Path) -> None:
    roots = _copy_of_the_package(tmp_path)
    # Function-level imports, one of them relative: allowed by the layers, caught as a cycle.
    _append(roots["memorch"] / "domain" / "_records.py", "\n\ndef _p():\n    from memorch.domain import _redaction\n")
    _append(roots["memorch"] / "domain" / "_redaction.py", "\n\ndef _q():\n    from . import _records\n")
    graph = import_graph(module_files(roots))
    assert cycles(graph) == [["memorch.domain._records", "memorch.domain._redaction"]]
    assert upward_edges(graph) == []


def _loaded_after(statement: str) -> set[str]:
    probe = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return set(done.stdout.split())


def test_the_mcp_app_and_every_sub_package_import_nothing_heavy() -> None:
    """The cold start: ``tools/list`` is answered before LanceDB, numpy, LiteLLM or Kuzu load
    (bench/cold_start.py measures it), and no sub-package's ``__init__`` loads them either."""
    loaded = _loaded_after("import memorch.serve._app, memorch.tools")
    assert "memorch.serve._app" in loaded
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}, sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    packages = sorted(p for p, f in module_files(installed_roots()).items() if f.name == "__init__.py")
    loaded = _loaded_after("; ".join(f"import {p}" for p in packages))
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}, sorted(m for m in loaded if m.split(".")[0] in HEAVY)
