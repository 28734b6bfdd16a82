"""
tlsfast/_engine.pyi describes the compiled module: the same public
functions, constants, methods and properties, no more and no fewer.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from tlsfast import _engine

STUB = Path(_engine.__file__).with_name("_engine.pyi")


def _stub() -> tuple[set[str], dict[str, set[str]]]:
    tree = ast.parse(STUB.read_text())
    names: set[str] = set()
    classes: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            inherited = set().union(*(classes[base.id] for base in node.bases
                                      if isinstance(base, ast.Name) and base.id in classes))
            classes[node.name] = inherited | {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
    return names, classes


def _public(names) -> set[str]:
    return {name for name in names if not name.startswith("_")}


def test_stub_names_the_public_module_api():
    names, _ = _stub()
    runtime = {name for name in _public(vars(_engine))
               if not inspect.ismodule(getattr(_engine, name))}
    assert _public(names) == runtime


def test_stub_names_every_engine_method_and_property():
    _, classes = _stub()
    assert set(classes) == {"TLSEngine", "SocketEnd", "PlainRelay", "RecordLoop"}
    for name, methods in classes.items():
        assert _public(methods) == _public(dir(getattr(_engine, name))), name
    assert "__new__" in classes["TLSEngine"]  # the constructor takes the Connection
