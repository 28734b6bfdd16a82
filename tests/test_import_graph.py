"""
No import cycles among tlsfast's modules.

The graph is read from the source (the AST of every module), not from what
happens to be imported at run time, and it counts every import statement
wherever it stands: at the top, inside a function, under ``if
TYPE_CHECKING``.  A lazy import only hides a cycle from the interpreter;
the next reader still has two modules that each need the other.

Edges, for a module M:

- ``import a.b.c`` and ``from a.b import c``: M -> ``a.b.c`` when that is a
  module of the tree, else M -> the longest prefix that is (``from a.b
  import name`` imports ``a.b``'s ``__init__`` for a name defined there);
- relative imports are resolved against M's package first;
- a package's ``__init__`` is its package name (``tlsfast.bench``), and
  importing ``a.b.c`` is *not* counted as importing ``a`` and ``a.b``:
  Python runs those ``__init__`` modules first, but every submodule shares
  that, so counting it would make any ``__init__`` that imports one of its
  submodules a cycle with all of them.  A module that names the package
  (``from tlsfast import TLSEngine``) does depend on its ``__init__``.
- a compiled module (``_engine``: a ``.so`` with a ``.pyi`` stub) is a node
  with no edges; names outside the tree (Twisted, OpenSSL) are not nodes.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import tlsfast

PACKAGE_ROOT = Path(tlsfast.__file__).parent


def module_names(root: Path) -> dict[str, Path]:
    """{dotted module name: path} for every module under package ``root``:
    .py sources, and compiled modules by their type stubs (.pyi)."""
    names = {}
    for path in sorted(root.rglob("*.py*")):
        if path.suffix not in (".py", ".pyi"):
            continue
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if path.suffix == ".py" or name not in names:
            names[name] = path
    return names


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` or its longest prefix that is a module of the tree."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the tree that ``module`` imports, anywhere in its source
    (none for a compiled module, known by its stub)."""
    if path.suffix == ".pyi":
        return set()
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"] or [base]
        else:
            continue
        for target in targets:
            known = _known(target, modules)
            if known is not None and known != module:
                found.add(known)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules, the first repeated at the end), or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None


def test_tlsfast_has_no_import_cycle():
    graph = import_graph(PACKAGE_ROOT)
    assert "tlsfast.bench.runner" in graph  # the walk found the tree
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(reversed(cycle))


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


@pytest.mark.parametrize("second", [
    "import pkg.a\n",  # top-level import
    "def f():\n    from pkg import a\n",  # lazy, inside a function: still a cycle
    "from . import a\n",  # relative
    "from .a import thing\n",  # a name from a module
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n",
])
def test_a_cycle_is_found(tmp_path, second):
    root = _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "from pkg.sub import b\n",
                             "pkg/sub/__init__.py": "", "pkg/sub/b.py": second.replace("from . ", "from .. ")
                             .replace("from .a", "from ..a")})
    assert find_cycle(import_graph(root)) is not None


def test_no_cycle_through_parent_packages(tmp_path):
    """A package ``__init__`` that imports its submodule, which imports a
    sibling: Python runs ``pkg/__init__`` first for every submodule, but that
    is not a cycle between the modules."""
    root = _write(tmp_path, {"pkg/__init__.py": "from pkg.a import thing\n",
                             "pkg/a.py": "from pkg.b import other\nthing = other\n",
                             "pkg/b.py": "other = 1\n"})
    graph = import_graph(root)
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": set()}
    assert find_cycle(graph) is None


def test_naming_the_package_depends_on_its_init(tmp_path):
    root = _write(tmp_path, {"pkg/__init__.py": "from pkg.a import thing\n",
                             "pkg/a.py": "def f():\n    from pkg import other\nthing = 1\n"})
    assert find_cycle(import_graph(root)) is not None


def test_a_compiled_module_is_a_leaf(tmp_path):
    """``from pkg import _engine`` names the compiled module (known by its
    stub), not ``pkg/__init__``."""
    root = _write(tmp_path, {"pkg/__init__.py": "from pkg._binding import bind\n",
                             "pkg/_binding.py": "def bind():\n    from pkg import _engine\n",
                             "pkg/_engine.pyi": "from pkg import _binding\n"})
    graph = import_graph(root)
    assert graph["pkg._binding"] == {"pkg._engine"}
    assert graph["pkg._engine"] == set()
    assert find_cycle(graph) is None
