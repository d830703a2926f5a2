"""The layout README.md promises, read from the code's own imports: what each layer may
import, no import cycle between modules (imports inside functions and under TYPE_CHECKING
count: a cycle hidden that way is still one), and no module outside tests/ over 500 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "cogs", "storage")
MAX_LINES = 500

# layer → what it must never import (a layer is a module's first two names under bot/,
# its first name elsewhere). Everything not named here may be imported.
FORBIDDEN = {
    "bot.core": ("discord", "bot.discord", "cogs", "bot.app", "bot.simulator"),
    "bot.api": (
        "discord",
        "bot.discord",
        "cogs",
        "bot.app",
        "bot.core",
        "bot.simulator",
        "storage",
    ),
    "bot.simulator": ("discord", "bot.discord", "cogs", "bot.app", "bot.core", "storage"),
    "bot.retry": ("discord", "bot", "cogs", "storage"),
    "bot.metrics": ("discord", "bot", "cogs", "storage"),
    "storage": ("discord", "bot", "cogs"),
    "bot.listening": ("discord", "bot.discord", "cogs"),
    "bot.webhook_receiver": ("discord", "bot.discord", "cogs"),
    "bot.metrics_endpoint": ("discord", "bot.discord", "cogs"),
}
# Only these layers speak to Discord.
DISCORD_LAYERS = ("bot.discord", "cogs")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imports_of(name: str) -> Iterator[str]:
    """Every module `name` imports, anywhere in its body, as absolute dotted names; for
    `from a import b` both `a` and `a.b` (b may be a module)."""
    path = modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def layer_of(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "bot" and len(parts) > 1 else parts[0]


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def project_module(target: str) -> str | None:
    """The project module `target` names (the longest known prefix), if any."""
    while target and target not in modules():
        target = target.rpartition(".")[0]
    return target or None


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_only_what_it_may(layer: str) -> None:
    members = [name for name in modules() if layer_of(name) == layer]
    assert members, f"no module in layer {layer}: is the table out of date?"
    strays = {
        f"{name} imports {target}"
        for name in members
        for target in imports_of(name)
        for banned in FORBIDDEN[layer]
        # "bot" banned means any bot module (not the layer itself, nor `from bot import x`
        # naming the layer's own module).
        if within(target, banned)
        and not within(target, layer)
        and not (banned == "bot" and target == "bot")
    }
    assert not strays, sorted(strays)


def test_only_the_discord_package_and_the_cogs_import_discord() -> None:
    strays = {
        name
        for name in modules()
        if layer_of(name) not in DISCORD_LAYERS
        and any(within(target, "discord") for target in imports_of(name))
    }
    assert not strays, sorted(strays)


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules()}
    for name in modules():
        for target in imports_of(name):
            found = project_module(target)
            # A package's own __init__ is not an edge of its members (importing bot.x runs
            # bot/__init__ first, whatever the code says).
            if found and found != name and not within(name, found):
                graph[name].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules() -> None:
    assert not cycles(import_graph())


def test_the_cycle_finder_finds_one() -> None:
    # The check above can fail: a two-module loop and a three-module loop are both found.
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(cycles(graph)) == [["a", "b"], ["c", "d", "e"]]


def test_no_module_outside_tests_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in modules().values()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long
