"""
Find private names of Twisted, pyOpenSSL and cryptography used in Python
source: the rule that C{tlsfast/_foreign/} is the only place touching them
(tests/test_private_seam.py).

A use is any of:
    - an import of a private foreign module or name
      (C{from twisted.internet._sslverify import ...},
      C{from twisted.internet import _sslverify}, C{import OpenSSL._util});
    - C{x._name} (x not C{self}/C{cls}) where x comes from a foreign import
      or C{_name} is a private name some loaded foreign module or class
      defines (class attributes, and C{self._name} in its source);
    - the same through C{getattr}/C{setattr}/C{hasattr}/C{delattr} with a
      literal name;
    - C{self._name} / C{cls._name} in a class with a foreign base class whose
      own code defines C{_name}.

Foreign names are found by introspecting the modules actually loaded, so the
rule follows the installed versions.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

FOREIGN_ROOTS = frozenset({"twisted", "OpenSSL", "cryptography"})
_REFLECTION = frozenset({"getattr", "setattr", "hasattr", "delattr"})
# Underscored but documented public API (namedtuple's).
_PUBLIC = frozenset({"_replace", "_asdict", "_make", "_fields", "_field_defaults"})


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def isPrivate(name: str) -> bool:
    return (name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
            and name not in _PUBLIC)


def isForeign(dotted: str) -> bool:
    return dotted.split(".", 1)[0] in FOREIGN_ROOTS


def _selfAttributes(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls") and isPrivate(node.attr)):
            yield node.attr


@cache
def _sourceTree(obj: object) -> ast.AST | None:
    try:
        return ast.parse(inspect.getsource(obj))  # type: ignore[arg-type]  # any object: errors are caught
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None


@cache
def privateNamesOfClass(cls: type) -> frozenset[str]:
    """Private names a foreign class defines: attributes, and C{self._x} in its code."""
    names = {name for name in vars(cls) if isPrivate(name)}
    tree = _sourceTree(cls)
    if tree is not None:
        names.update(_selfAttributes(tree))
    return frozenset(names)


def foreignPrivateNamesOfBases(cls: type) -> frozenset[str]:
    names: set[str] = set()
    for base in cls.__mro__:
        if isForeign(getattr(base, "__module__", "") or ""):
            names |= privateNamesOfClass(base)
    return frozenset(names)


def foreignPrivateNames() -> frozenset[str]:
    """Private names of every foreign module loaded now, and of their classes."""
    names: set[str] = set()
    for moduleName, module in list(sys.modules.items()):
        if module is None or not isForeign(moduleName):
            continue
        names.update(name for name in vars(module) if isPrivate(name))
        names.update(part for part in moduleName.split(".") if isPrivate(part))
        tree = _sourceTree(module)
        if tree is not None:
            names.update(_selfAttributes(tree))
        for value in list(vars(module).values()):
            if isinstance(value, type) and getattr(value, "__module__", None) == moduleName:
                names.update(name for name in vars(value) if isPrivate(name))
    return frozenset(names)


def _imports(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it was imported as."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    root = alias.name.split(".", 1)[0]
                    bound[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _dotted(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def _resolve(dotted: str) -> object | None:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
        except AttributeError:
            return None
        return obj
    return None


def _baseClass(base: ast.expr, bound: dict[str, str], module: object | None) -> type | None:
    parts = _dotted(base)
    if parts is None:
        return None
    obj: object | None
    if parts[0] in bound:
        obj = _resolve(".".join([bound[parts[0]], *parts[1:]]))
    elif module is not None:
        obj = module
        for part in parts:
            obj = getattr(obj, part, None)
    else:
        obj = None
    return obj if isinstance(obj, type) else None


def _foreignBaseNames(node: ast.ClassDef, bound: dict[str, str], module: object | None) -> frozenset[str]:
    names: set[str] = set()
    for base in node.bases:
        cls = _baseClass(base, bound, module)
        if cls is not None:
            names |= foreignPrivateNamesOfBases(cls)
    return frozenset(names)


def _definedNames(node: ast.ClassDef) -> Iterator[str]:
    """Private names a class of ours defines: methods, class attributes, C{self._x = ...}."""
    for statement in node.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield statement.name
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            yield from (target.id for target in targets if isinstance(target, ast.Name))
    for child in ast.walk(node):
        if (isinstance(child, ast.Attribute) and isinstance(child.ctx, ast.Store)
                and isinstance(child.value, ast.Name) and child.value.id == "self"):
            yield child.attr


def ownPrivateNames(source: str, path: str, module: object | None = None) -> frozenset[str]:
    """
    Private names that classes in C{source} define for themselves (not ones
    a foreign base defines): C{x._name} with such a name is taken as ours.
    """
    tree = ast.parse(source, path)
    bound = _imports(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            inherited = _foreignBaseNames(node, bound, module)
            names.update(name for name in _definedNames(node) if isPrivate(name) and name not in inherited)
    return frozenset(names)


def scanSource(source: str, path: str, foreignNames: Iterable[str], module: object | None = None,
               ownNames: Iterable[str] = ()) -> list[Violation]:
    """
    Every private foreign use in C{source}.  C{module}: the same code,
    loaded, to resolve local base classes; C{ownNames}: private names our
    own classes define (L{ownPrivateNames}), not counted as foreign.
    """
    foreignNames = frozenset(foreignNames) - frozenset(ownNames)
    tree = ast.parse(source, path)
    bound = _imports(tree)
    found: list[Violation] = []

    def report(node: ast.AST, what: str) -> None:
        found.append(Violation(path, getattr(node, "lineno", 0), what))

    def foreignRooted(value: ast.expr) -> bool:
        parts = _dotted(value)
        return parts is not None and parts[0] in bound and isForeign(bound[parts[0]])

    def visit(node: ast.AST, classNames: frozenset[str]) -> None:
        if isinstance(node, ast.ClassDef):
            inner = classNames | _foreignBaseNames(node, bound, module)
            for statement in node.body:
                if (isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and statement.name in inner - classNames):
                    report(statement, f"overrides {statement.name} of a foreign base class")
            for child in ast.iter_child_nodes(node):
                visit(child, inner)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if isForeign(alias.name) and any(isPrivate(p) for p in alias.name.split(".")):
                    report(node, f"imports private module {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and isForeign(node.module):
            if any(isPrivate(p) for p in node.module.split(".")):
                report(node, f"imports from private module {node.module}")
            for alias in node.names:
                if isPrivate(alias.name):
                    report(node, f"imports private name {node.module}.{alias.name}")
        elif isinstance(node, ast.Attribute) and isPrivate(node.attr):
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                if node.attr in classNames:
                    report(node, f"{value.id}.{node.attr} belongs to a foreign base class")
            elif foreignRooted(value) or node.attr in foreignNames:
                report(node, f"private foreign attribute .{node.attr}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _REFLECTION
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str) and isPrivate(node.args[1].value)):
            name = node.args[1].value
            if name in foreignNames or foreignRooted(node.args[0]) or name in classNames:
                report(node, f"{node.func.id}() of private foreign attribute {name}")
        for child in ast.iter_child_nodes(node):
            visit(child, classNames)

    visit(tree, frozenset())
    return found


def scanPackage(root: Path, package: str, exempt: str) -> list[Violation]:
    """Scan every module of C{package} (under C{root}) except the C{exempt} subpackage."""
    paths = sorted((root / package.replace(".", "/")).rglob("*.py"))
    modules = {}
    for path in paths:
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        if path.name == "__main__.py":  # importing it would run the program
            modules[path] = None
            continue
        try:
            modules[path] = importlib.import_module(name)
        except ImportError:  # an optional stack not installed: scanned statically
            modules[path] = None
    foreignNames = foreignPrivateNames()
    exemptPrefix = exempt.replace(".", "/") + "/"
    scanned = {path: path.relative_to(root).as_posix() for path in paths
               if not path.relative_to(root).as_posix().startswith(exemptPrefix)}
    found = []
    for path, relative in scanned.items():
        source = path.read_text()
        # Per module: x._close in the module whose class defines _close is ours.
        ownNames = ownPrivateNames(source, relative, modules[path])
        found += scanSource(source, relative, foreignNames, modules[path], ownNames)
    return found


if __name__ == "__main__":  # python -m tests.privatescan: list them
    for violation in scanPackage(Path(__file__).resolve().parent.parent, "tlsfast", "tlsfast._foreign"):
        print(violation)
