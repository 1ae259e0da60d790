"""common/ is layered (docs/architecture.md): every import of common, at any depth of a module, points to the
same layer or one below, and no chain of imports comes back to where it started."""
import ast
from pathlib import Path

import pytest
from conftest import ROOT

COMMON = Path(ROOT) / "common"
LAYERS = {"runfiles": 0, "training": 1, "blood": 2, "rna": 2, "reporting": 3}   # rna and blood: side by side


def module_name(path):
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports_of(path):
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py")


def imports_in(source, module, is_package=False):
    """The common modules a module's source imports (absolute or relative, at the top or inside functions)."""
    tree = ast.parse(source)
    here = module.split(".")
    package = here if is_package else here[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("common")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base.startswith("common"):
                # `from common.rna import binding` imports the module common.rna.binding, and
                # `from common import rna` the package common.rna (its __init__)
                out |= {f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base for a in node.names}
    return {m for m in out if m != "common"}


def is_module(dotted):
    path = COMMON.parent / dotted.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def graph():
    return {module_name(p): imports_of(p) for p in COMMON.rglob("*.py")}


def layer(module):
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def find_cycle(g):
    """One import cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        state[m] = "done"
        stack.pop()
        return None

    for m in sorted(g):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_every_module_sits_in_a_layer():
    loose = [m for m in graph() if m != "common" and layer(m) is None]
    assert not loose, f"modules outside the layers {sorted(LAYERS)}: {loose} (see docs/architecture.md)"


def test_imports_point_down_or_sideways_within_a_package():
    bad = [f"{m} (layer {layer(m)}) imports {n} (layer {layer(n)})" for m, ns in graph().items() for n in ns
           if layer(m) is not None and layer(n) is not None and layer(n) > layer(m)]
    bad += [f"{m} imports {n}: blood and rna are side by side and independent" for m, ns in graph().items()
            for n in ns if {m.split(".")[1], n.split(".")[1]} == {"blood", "rna"}]
    assert not bad, "imports against the layers: " + "; ".join(bad)


def test_no_import_cycle():
    assert find_cycle(graph()) is None, f"import cycle: {' -> '.join(find_cycle(graph()))}"


@pytest.mark.parametrize("edges, cycle", [({"a": {"b"}, "b": {"c"}, "c": set()}, False),
                                          ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
                                          ({"a": {"a"}}, True)])
def test_the_cycle_finder_finds_cycles(edges, cycle):
    assert (find_cycle(edges) is not None) == cycle


def test_an_added_upward_import_is_caught():
    """A runfiles module importing reporting (absolute, relative, inside a function): each is an upward
    import."""
    for src, module in (("from common.reporting import stats\n", "common.reporting.stats"),
                        ("from ..reporting.stats import welch_diff\n", "common.reporting.stats"),
                        ("def f():\n    import common.reporting.stats\n", "common.reporting.stats"),
                        ("from common import reporting\n", "common.reporting"),
                        ("from .. import reporting\n", "common.reporting")):
        found = imports_in(src, "common.runfiles.probe")
        assert found == {module}, (src, found)
        assert all(layer(n) > layer("common.runfiles.probe") for n in found)


def params_named_args(source):
    """(function, line) of every function in a module's source with a parameter named `args` (an argparse
    Namespace passed down: the scripts build a frozen config and RunOptions instead)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]   # *args is no Namespace
            if "args" in names:
                out.append((getattr(node, "name", "lambda"), node.lineno))
    return out


def test_no_function_in_common_takes_the_namespace():
    found = {str(p.relative_to(ROOT)): params_named_args(p.read_text()) for p in COMMON.rglob("*.py")}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_args_finder_finds_them():
    assert params_named_args("def f(x, args):\n    pass\n"
                             "g = lambda *, args: 0\n") == [("f", 1), ("lambda", 3)]
    assert params_named_args("def f(x, *args):\n    pass\n") == [] and params_named_args("args = 1\n") == []


def test_modules_and_scripts_stay_small():
    """STYLE.md: thin scripts (top level and bench/, at most about 250 lines) over a small library (no module
    over 350)."""
    lines = lambda p: len(p.read_text().splitlines())
    big_modules = {str(p.relative_to(ROOT)): lines(p) for p in COMMON.rglob("*.py") if lines(p) > 350}
    big_scripts = {p.name: lines(p) for p in [*Path(ROOT).glob("*.py"), *Path(ROOT, "bench").glob("*.py")]
                   if lines(p) > 250}
    assert big_modules == {} and big_scripts == {}
