"""Import structure: no import cycle in the package, and the light entry points stay light.

``framescan --version``, the HTTP client and loading configuration (a policy, a lexicon, a
model manifest) must not import NumPy, Numba or ONNX Runtime: each check runs the code (or the
real ``python -m framescan`` entry point) in a fresh interpreter and reads ``sys.modules`` at
exit. (``-X importtime`` would miss modules loaded with ``importlib.import_module``, as the
lazy package and the CLI's sub-commands are.)
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import framescan

PACKAGE_DIR = Path(framescan.__file__).parent
#: What a light entry point must not import (top-level package names).
HEAVY = frozenset({"numpy", "numba", "onnxruntime"})


# --------------------------------------------------------------------------- import graph


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported: not those inside functions
    (they run when called) nor under ``if TYPE_CHECKING:`` (they never run)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:
                yield from _module_level_imports(ast.Module(body=[stmt], type_ignores=[]))
        else:
            yield from _module_level_imports(child)


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at module level.

    ``from pkg import name`` is an import of the submodule ``pkg.name`` when there is one, else
    of ``pkg`` itself (its ``__init__``). Parent packages, which Python imports before any of
    their submodules, are not edges: a submodule's parent is always loaded (or loading) first.
    """
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        files[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in files.items():
        edges = graph.setdefault(name, set())
        for node in _module_level_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in files)
                continue
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in files:
                    edges.add(target)
                elif base in files:
                    edges.add(base)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per back edge of a depth-first walk: empty when acyclic."""
    cycles: list[list[str]] = []
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_graph_follows_module_level_imports_only(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from ._v import V\n",
        "_v.py": "V = 1\n",
        "a.py": "from . import b\nfrom .sub import c as _c\nif True:\n    import pkg.d\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\nelse:\n    from . import V\n",
        "d.py": "def f():\n    from . import a\nclass K:\n    from .sub.c import X\n",
        "sub/__init__.py": "",
        "sub/c.py": "from .. import a\nfrom ..b import thing\nX = 1\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    graph = import_graph(pkg, "pkg")
    assert graph == {
        "pkg": {"pkg._v"},
        "pkg._v": set(),
        "pkg.a": {"pkg.b", "pkg.sub.c", "pkg.d"},
        "pkg.b": {"pkg"},  # TYPE_CHECKING import left out, its else branch kept
        "pkg.d": {"pkg.sub.c"},  # class bodies run at import, function bodies do not
        "pkg.sub": set(),
        "pkg.sub.c": {"pkg.a", "pkg.b"},
    }
    assert find_cycles(graph) == [["pkg.a", "pkg.d", "pkg.sub.c", "pkg.a"]]


def test_no_import_cycle_in_the_package() -> None:
    cycles = find_cycles(import_graph(PACKAGE_DIR, "framescan"))
    assert not cycles, "import cycles (module-level imports): " + "; ".join(" -> ".join(c) for c in cycles)


# --------------------------------------------------------------------------- light entry points


def run_python(tmp_path: Path, code: str) -> tuple[str, set[str]]:
    """Run ``python -c CODE`` in a fresh interpreter (it must exit 0): its standard output and
    the modules loaded when it exits."""
    listing = tmp_path / "modules.txt"
    hook = f"import atexit, sys\natexit.register(lambda: open({str(listing)!r}, 'w').write(' '.join(sys.modules)))\n"
    p = subprocess.run([sys.executable, "-c", hook + code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout, set(listing.read_text().split())


def run_cli(tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    """``python -m framescan ARGS`` (``runpy`` as ``-m`` does it), as ``run_python``."""
    code = (
        f"import runpy\nsys.argv = ['framescan', *{list(args)!r}]\nrunpy.run_module('framescan', run_name='__main__')"
    )
    return run_python(tmp_path, code)


def heavy(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules} & HEAVY


@pytest.mark.integration
def test_the_check_sees_heavy_modules(tmp_path: Path) -> None:
    # a scan's modules are seen (else the checks below could not fail)
    assert heavy(run_python(tmp_path, "import framescan.pipeline")[1]) == HEAVY - {"onnxruntime"}
    assert heavy(run_python(tmp_path, "import framescan\nframescan.Scanner()")[1]) == HEAVY


@pytest.mark.integration
@pytest.mark.parametrize(
    "code",
    [
        "import framescan",
        "import framescan.client",
        "from framescan.models import DEFAULT_MODEL, load_manifest\nload_manifest(DEFAULT_MODEL)",
        "from framescan.lexicon import Lexicon\nassert len(Lexicon.load(env=False)) > 0",
        "from framescan.config import ScanConfig\nassert ScanConfig.from_dict({'fps': 1}).to_dict() == {'fps': 1}",
        "import framescan.isolate",  # the parent of isolated workers: the model runtime loads in the child
    ],
    ids=["package", "client", "manifest", "lexicon", "config", "isolate"],
)
def test_light_imports(tmp_path: Path, code: str) -> None:
    assert not heavy(run_python(tmp_path, code)[1])


@pytest.mark.integration
def test_loading_a_policy_file_is_light(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"name": "strict", "categories": {"sexual": {"review": 0.3, "block": 0.5}}}))
    code = f"from framescan import load_policy\nassert load_policy({str(path)!r}).name == 'strict'"
    assert not heavy(run_python(tmp_path, code)[1])


@pytest.mark.integration
def test_version_is_light(tmp_path: Path) -> None:
    out, modules = run_cli(tmp_path, "--version")
    assert out.strip() == f"framescan {framescan.__version__}"
    assert not heavy(modules)


@pytest.mark.integration
def test_a_command_imports_only_its_own_module(tmp_path: Path) -> None:
    out, modules = run_cli(tmp_path, "probe", "--help")
    assert out.startswith("usage: framescan probe")
    assert {m for m in modules if m.startswith("framescan.cli.")} == {"framescan.cli.main", "framescan.cli.probe"}
    assert not heavy(modules)


@pytest.mark.integration
def test_help_lists_every_command(tmp_path: Path) -> None:
    from framescan.cli.main import COMMANDS

    out, _ = run_cli(tmp_path, "--help")
    listed = re.findall(r"^    (\S+)", out, re.MULTILINE)  # one line per command (longer help wraps deeper)
    assert listed == list(COMMANDS)


# --------------------------------------------------------------------------- public API


def test_public_names_are_there() -> None:
    from framescan import FramescanError, Scanner, scan
    from framescan.errors import FramescanError as Error
    from framescan.pipeline import Scanner as PipelineScanner
    from framescan.pipeline import scan as pipeline_scan

    assert (Scanner, scan, FramescanError) == (PipelineScanner, pipeline_scan, Error)
    for name in framescan.__all__:
        assert getattr(framescan, name) is not None
        assert name in dir(framescan)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        framescan.no_such_name  # noqa: B018


@pytest.mark.integration
def test_probe_stays_the_function_when_its_module_is_imported() -> None:
    # ``framescan.probe`` is both a function and a module: importing the module must not
    # replace the function on the package
    code = "import framescan.probe, framescan.pipeline\nfrom framescan import probe\nassert callable(probe), probe"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
