"""The simulator stays a separate layer: it builds on the API's models and endpoints only."""

from __future__ import annotations

import ast
from pathlib import Path

import bot.simulator

ALLOWED = ("bot.simulator", "bot.api.models", "bot.api.endpoints")
PACKAGE = Path(bot.simulator.__file__).parent


def bot_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name == "bot" or name.startswith("bot.")}


def test_the_simulator_imports_only_the_api_models_and_endpoints() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 6
    for path in modules:
        strays = {
            name
            for name in bot_imports(path)
            if not any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED)
        }
        assert not strays, f"{path.name} imports {sorted(strays)}"
