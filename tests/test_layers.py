"""The import graph of the packages: the layers import one way (docs/architecture.md).

``engine`` imports nothing from ``storage`` or ``web``; ``storage`` nothing from ``web``; and no
module takes part in an import cycle at run time, counting imports inside functions (a cycle
held together by a function-local import is still a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "storage", "web")


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = modules()


def imports(path: Path, *, run_time_only: bool) -> set[str]:
    """Project modules ``path`` imports (function-local ones too; ``TYPE_CHECKING`` blocks only
    unless ``run_time_only``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    if run_time_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(n) for n in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name.split(".")[0] in PACKAGES:
                found.add(name)
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"), [("engine", ("storage", "web")), ("storage", ("web",))]
)
def test_a_lower_layer_imports_nothing_from_a_higher_one(
    package: str, forbidden: tuple[str, ...]
) -> None:
    wrong = {
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if name.split(".")[0] == package
        for target in imports(path, run_time_only=False)
        if target.split(".")[0] in forbidden
    }
    assert wrong == set()


# inside web/: the routes stand on the modules below them, never the other way
WEB_TOP = ("web.routes", "web.app", "web.server", "web.cli")


def test_web_modules_below_the_routes_import_no_route() -> None:
    below = {
        name: path
        for name, path in MODULES.items()
        if name.startswith("web.") and not name.startswith(WEB_TOP)
    }
    assert {"web.deps", "web.usecases", "web.presenters", "web.streams"} <= below.keys()
    wrong = {
        f"{name} imports {target}"
        for name, path in below.items()
        for target in imports(path, run_time_only=False)
        if target.startswith(WEB_TOP)
    }
    assert wrong == set()


def test_no_module_is_in_an_import_cycle() -> None:
    graph = {
        name: {t for t in imports(path, run_time_only=True) if t != name}
        for name, path in MODULES.items()
    }

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False

    cycles = sorted(name for name in graph if reaches(name, name))
    assert cycles == []


def test_the_graph_reader_sees_what_it_should() -> None:
    """The checks above could pass by reading nothing: make sure they read real edges."""
    assert "engine.supervisor" in imports(MODULES["engine.conversation_actor"], run_time_only=True)
    assert "engine.store" not in imports(MODULES["engine.conversation_actor"], run_time_only=True)
    assert "engine.store" in imports(MODULES["engine.conversation_actor"], run_time_only=False)
    assert "engine.metrics" in imports(MODULES["storage.db"], run_time_only=True)
    assert "web.server" in imports(MODULES["web.cli"], run_time_only=True)  # a local import
    assert "web.routes.agent" in imports(MODULES["web.routes"], run_time_only=True)
    assert "web.deps" in imports(MODULES["web.routes.visitor"], run_time_only=True)
