"""The house's rules, checked on the source: imports run one way, modules stay readable.

The import graph is read from the source (every ``import``, at any depth, type-checking
ones included: a cycle in types is a cycle in design) and must hold no cycle inside
``strom/`` or ``bench/``. The layers:

* ``media/``: sans-IO protocol and container code: imports nothing of Strom but
  ``errors`` (and itself); no asyncio, no sockets.
* ``live/``: the hub: ``media`` and the foundation (``errors``, ``settings``, ``ratelimit``,
  ``tasks``) only.
* nothing outside ``web/`` imports ``web``; nothing but the CLI (``cli``, the parser,
  and ``commands``, what the commands do) imports the composition root ``server``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("strom", "bench")
MAX_LINES = 600

#: what a layer may import from Strom (a prefix matches the module and its submodules)
FOUNDATION = ("strom.errors", "strom.settings", "strom.ratelimit", "strom.tasks")
ALLOWED = {
    "strom.media": ("strom.media", "strom.errors"),
    "strom.live": ("strom.live", "strom.media", *FOUNDATION),
}
#: the command line: the parser, and what its commands do (loaded by it when needed)
CLI = ("strom.cli", "strom.commands")
#: standard-library modules sans-IO code must not use
IO_MODULES = ("asyncio", "socket", "selectors", "threading", "subprocess")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imports(path: Path, name: str) -> Iterator[str | tuple[str, str]]:
    """Every module ``path`` imports (absolute names), at any depth: a name, or for
    ``from base import name`` the pair (base, name) (a submodule, or a name in base)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield from ((base, alias.name) for alias in node.names)


def graph() -> dict[str, set[str]]:
    files = source_files()
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        found = set()
        for imported in imports(path, name):
            if isinstance(imported, tuple):  # a submodule if there is one, else its base
                base, member = imported
                target = f"{base}.{member}" if f"{base}.{member}" in files else base
            else:
                target = imported
            # the longest known module the imported name lies in
            while target and target not in files:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
        edges[name] = found
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in edges[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_checker_sees_a_cycle() -> None:
    """Not a rubber stamp: a two-module circle and a three-module one are found."""
    edges = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert cycles(edges) == [["a", "b"], ["c", "d", "e"]]


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_inner_layers_import_only_what_lies_beneath(layer: str) -> None:
    wrong = {
        f"{module} -> {target}"
        for module, targets in graph().items()
        if within(module, (layer,))
        for target in targets
        if target.startswith("strom") and not within(target, ALLOWED[layer])
    }
    assert wrong == set()


def test_media_is_sans_io() -> None:
    files = source_files()
    wrong = {
        f"{name} imports {imported}"
        for name, path in files.items()
        if within(name, ("strom.media",))
        for imported in imports(path, name)
        if within(imported[0] if isinstance(imported, tuple) else imported, IO_MODULES)
    }
    assert wrong == set()


def test_only_web_imports_web_and_only_the_cli_imports_the_root() -> None:
    wrong = set()
    for module, targets in graph().items():
        for target in targets:
            if within(target, ("strom.web",)) and not within(
                module, ("strom.web", "strom.server", *CLI)
            ):
                wrong.add(f"{module} -> {target}")
            if target == "strom.server" and module not in CLI:
                wrong.add(f"{module} -> {target}")
    assert wrong == set()


def test_modules_stay_a_readable_size() -> None:
    long = {
        name: lines
        for name, path in source_files().items()
        if name.startswith("strom") and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_tests_share_helpers_not_conftests_or_other_tests() -> None:
    """What several tests use lives in ``tests/helpers/`` (or a helper module beside
    them); a conftest only declares fixtures, and a test module is never imported."""
    wrong = set()
    for path in sorted((ROOT / "tests").rglob("*.py")):
        name = module_name(path)
        for found in imports(path, name):
            target = ".".join(found) if isinstance(found, tuple) else found
            last = target.split(".")
            if target.startswith("tests.") and (
                "conftest" in last or any(part.startswith("test_") for part in last)
            ):
                wrong.add(f"{name} -> {target}")
    assert wrong == set()
