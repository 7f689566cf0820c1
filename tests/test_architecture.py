"""The package's import graph runs one way: data -> loss -> trainer -> generation/judges -> online -> eval -> cli.

Read from the source (``ast``), so a lazy import inside a function counts as much as one at the top of a file.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cutalign"

LAYERS = [
    ("errors", "io"),
    ("data", "tasks"),
    ("loss", "logprobs", "models"),
    ("config",),
    ("model_card",),
    ("trainer",),
    ("generation", "records", "judges", "baselines"),
    ("online",),
    ("eval", "annotate", "inspect"),
    ("cli", "__main__"),
]
"""Each top-level module or sub-package of cutalign, lowest first. A unit may import its own layer or lower ones."""

LAYER = {unit: depth for depth, units in enumerate(LAYERS) for unit in units}


def unit_of(path: Path) -> str:
    """The top-level unit (module or sub-package) a source file belongs to."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_units(path: Path) -> set[str]:
    """The top-level cutalign units that ``path`` imports (absolute or relative imports, anywhere in the file)."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # folders between the package root and the file
    units = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names = [node.module or ""]
            elif node.level - 1 < depth:  # relative to a sub-package: stays inside the file's own unit
                continue
            elif node.module:  # from ..data import x
                names = [f"cutalign.{node.module}"]
            else:  # from .. import data, loss
                names = [f"cutalign.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "cutalign" and len(parts) > 1:
                units.add(parts[1])
    return units


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "__init__.py":
            continue  # the public API re-exports from every layer
        unit = unit_of(path)
        edges.setdefault(unit, set()).update(imported_units(path) - {unit})
    return edges


def test_every_unit_has_a_layer():
    assert set(graph()) <= set(LAYER), f"add these to LAYERS: {sorted(set(graph()) - set(LAYER))}"


def test_imports_never_go_up_a_layer():
    upward = sorted(f"{unit} -> {target}" for unit, targets in graph().items() for target in targets
                    if LAYER.get(target, -1) > LAYER.get(unit, len(LAYERS)))
    assert upward == []


def test_no_import_cycle_between_units():
    edges = graph()
    state: dict[str, str] = {}

    def visit(unit: str, trail: list[str]):
        if state.get(unit) == "open":
            raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(unit):] + [unit]))
        if state.get(unit) == "done":
            return
        state[unit] = "open"
        for target in sorted(edges.get(unit, ())):
            visit(target, trail + [unit])
        state[unit] = "done"

    for unit in sorted(edges):
        visit(unit, [])
