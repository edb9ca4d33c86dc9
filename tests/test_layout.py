"""The layout of ``src/``: no import cycle between its modules, imports inside functions counted.

A cycle hidden behind a function-level import still couples the two modules (each needs the other
to work); it is also where a refactor first breaks. The graph below reads every ``import`` of every
module with :mod:`ast`, wherever it stands in the file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The ``src`` modules that ``path`` imports, anywhere in the file (``from a import b`` counts
    ``a.b`` when that is a module, else ``a``)."""
    found: set[str] = set()
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                     for alias in node.names]  # fmt: skip
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in SRC.rglob("*.py")}
    modules = set(files)
    return {name: imported_modules(path, modules) - {name} for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_sees_a_function_level_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_src_modules():
    graph = import_graph()
    assert graph.get("src.train"), "the graph should see src.train's imports"
    assert cycles(graph) == []


def test_no_catch_all_utils_room():
    utils = SRC / "utils"
    modules = (
        [path for path in utils.glob("*.py") if path.name != "__init__.py"]
        if utils.is_dir()
        else []
    )
    assert len(modules) <= 6, (
        f"src/utils/ holds {len(modules)} modules: give them rooms named for what they hold"
    )


#: the commands' modules: the only ones that may import the command line (src.cli)
ENTRY_POINTS = {
    "src.train", "src.eval", "src.protocol", "src.protocol.__main__", "src.features.__main__",
    "src.report",
}  # fmt: skip


def room(module: str) -> str:
    """A module's room: its folder under ``src`` (``src.runs.folder``: runs)."""
    return module.split(".")[1] if module.count(".") else module


def test_only_the_entry_points_import_the_command_line():
    graph = import_graph()
    reaching_up = sorted(
        module for module, imported in graph.items()
        if room(module) != "cli" and module not in ENTRY_POINTS
        and any(room(name) == "cli" for name in imported)
    )  # fmt: skip
    assert reaching_up == [], f"{reaching_up} import from src/cli/: move what they use to src/core/"
    assert any(room(name) == "cli" for name in graph["src.train"])  # the check sees them


def test_the_shared_core_imports_no_other_room():
    graph = import_graph()
    core = {module: imported for module, imported in graph.items() if room(module) == "core"}
    assert {"src.core.errors", "src.core.rank", "src.core.env"} <= set(core)
    upward = {m: sorted(n for n in names if room(n) != "core") for m, names in core.items()}
    assert {m: names for m, names in upward.items() if names} == {}


#: the protocol's stages: module → function of (settings, workspace, inputs, …)
STAGES = {
    "src.protocol.references": "evaluate_references",
    "src.protocol.search": "search_row",
    "src.protocol.extend": "choose",
    "src.protocol.refit": "refit_row",
    "src.protocol.verdicts": "intervals_and_comparisons",
    "src.protocol.report.write": "write_report",
}


@pytest.mark.parametrize(("module", "name"), STAGES.items())
def test_every_stage_is_a_function_of_settings_workspace_inputs_returning_a_dataclass(module, name):
    import dataclasses
    import importlib
    import inspect
    import typing

    from src.protocol.inputs import Inputs
    from src.protocol.settings import ProtocolSettings
    from src.protocol.workspace import Workspace

    stage = getattr(importlib.import_module(module), name)
    hints = typing.get_type_hints(stage)
    first = list(inspect.signature(stage).parameters)[:3]
    assert [hints[p] for p in first] == [ProtocolSettings, Workspace, Inputs]
    result = hints["return"]
    if typing.get_origin(result) is dict:  # one result per reference
        result = typing.get_args(result)[1]
    assert dataclasses.is_dataclass(result) or (name == "write_report" and result is Path)


def test_no_function_takes_a_whole_protocol_object():
    """The stages read typed settings, a workspace and their inputs, never the pipeline."""
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for arg in [*node.args.args, *node.args.kwonlyargs]:
                    if arg.arg == "protocol":
                        found.append(f"{module_name(path)}.{node.name}")
    assert found == []


def test_no_import_cycle_between_rooms():
    """Rooms (the folders of src) import each other one way only: a lower room never needs a
    higher one, so each can be read, tested and moved without those above it."""
    rooms: dict[str, set[str]] = {}
    for module, imported in import_graph().items():
        for name in imported:
            if room(name) != room(module):
                rooms.setdefault(room(module), set()).add(room(name))
    assert rooms.get("data"), "the graph should see the rooms' imports"
    assert cycles(rooms) == []
