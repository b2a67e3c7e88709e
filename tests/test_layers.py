"""The house's three floors, read from the code's own imports: app/ on top, workers/ in the middle,
core/ at the ground. Imports only point down, and no module reaches back to one that imports it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"app": 2, "workers": 1, "core": 0}


def modules() -> dict[str, Path]:
    found = {}
    for floor in FLOORS:
        for path in (ROOT / floor).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every project module this file imports, at module level or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_imports_only_point_down_the_floors():
    upward = [f"{a} -> {b}" for a, targets in graph().items() for b in targets
              if FLOORS[b.split(".")[0]] > FLOORS[a.split(".")[0]]]
    assert upward == []


def test_no_import_cycles():
    edges = graph()
    # a package's own __init__ is imported by every submodule; it must not import them back
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    assert cycles == []


def test_nothing_is_imported_for_its_side_effect():
    offenders = []
    for name, path in modules().items():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith(("import ", "from ")) and "noqa: F401" in line:
                offenders.append(f"{name}:{number}")
    assert offenders == []
