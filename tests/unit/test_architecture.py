"""The package's import graph: no cycles, and the composition root is imported by the CLI only."""

from __future__ import annotations

import re
from pathlib import Path

import grimp

PACKAGE = "alertbot"


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_imports_package_has_no_cycle() -> None:
    assert _cycles(_graph()) == []


def test_imports_bootstrap_imported_only_by_cli() -> None:
    graph = _graph()
    inside = graph.find_descendants("alertbot.bootstrap") | {"alertbot.bootstrap"}
    importers = set()
    for module in inside:
        importers |= graph.find_modules_that_directly_import(module)
    assert importers - inside == {"alertbot.cli"}


def test_imports_platform_libraries_only_inside_their_platform_package() -> None:
    graph = grimp.build_graph(PACKAGE, include_external_packages=True)
    for library in ("discord", "telegram"):
        users = {m for m in graph.find_modules_that_directly_import(library)}
        assert users, library
        allowed = f"alertbot.platforms.{library}."
        assert all(m.startswith(allowed) for m in users), (library, sorted(users))


def test_architecture_doc_names_only_paths_that_exist() -> None:
    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`([\w./<>-]+)`", text))
    # Paths are named from the repository, the package or the tests folder; "/why" is a command.
    paths = {n for n in named if "/" in n and "<" not in n and not n.startswith("/")}
    modules = {n for n in named if "/" not in n and n.endswith(".py")}
    assert paths and modules
    bases = (root, root / "alertbot", root / "tests")
    missing = [p for p in sorted(paths) if not any((base / p).exists() for base in bases)]
    known = {p.name for p in (root / "alertbot").rglob("*.py")}
    missing += [m for m in sorted(modules) if m not in known]
    assert missing == []
