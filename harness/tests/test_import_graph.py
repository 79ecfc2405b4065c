"""No import cycle among the harness's modules, counting every import that
runs (module level and inside functions), not those under `if
TYPE_CHECKING:` (annotations only). The core (source, series, build, vm,
results, check, send, kcidb, pipeline) imports no study module."""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[1]
STUDIES = {"harness.studies"} | {f"harness.studies.{m}" for m in (
    "run", "throttle", "throttle_report", "experiment", "experiment_report",
    "experiment_stats", "bench", "penalty", "manifest")}
CORE = {"harness.source", "harness.series", "harness.build", "harness.vm",
        "harness.results", "harness.check", "harness.kcidb", "harness.pipeline",
        "harness.record", "harness.report", "harness.toolchain", "harness.locks"}


def module_name(p: Path) -> str:
    parts = p.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(p: Path, names: set[str]) -> set[str]:
    tree = ast.parse(p.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("harness"):
            cands = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        else:
            continue
        for c in cands:
            while c and c not in names:
                c = c.rpartition(".")[0]
            if c:
                out.add(c)
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in HARNESS.rglob("*.py")
             if "tests" not in p.relative_to(HARNESS).parts}
    names = set(files)
    return {m: runtime_imports(p, names) - {m, "harness"} for m, p in files.items()}


def test_no_import_cycle() -> None:
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(
                    stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)


def test_the_core_imports_no_study() -> None:
    g = graph()
    for m in CORE & set(g):
        assert not g[m] & STUDIES, (m, sorted(g[m] & STUDIES))


def test_the_graph_sees_imports() -> None:
    """The check is not vacuous: it finds the imports that exist."""
    g = graph()
    assert "harness.pipeline" in g["harness.verbs"]
    assert "harness.studies.run" in g["harness.verbs"]
    assert "harness.report" in g["harness.studies.run"]  # inside a function


def test_the_studies_are_a_subpackage() -> None:
    """The layout shows the two halves: every study module lives in
    harness/studies/, and nothing else does."""
    in_dir = {module_name(p) for p in (HARNESS / "studies").glob("*.py")}
    assert in_dir == STUDIES
    assert not CORE & in_dir
