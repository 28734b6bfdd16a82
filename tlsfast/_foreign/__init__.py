"""
The seam: the only package that touches private names of Twisted, pyOpenSSL
or cryptography (tests/test_private_seam.py enforces it).

One module per foreign surface:

    - L{cryptobinding}: cryptography's cffi binding (C{_rust._openssl}: C{ffi}, C{lib});
    - L{pyopenssl}: pyOpenSSL internals (the C{SSL*} / C{SSL_CTX*} behind a
      Connection / Context, its C{SSL*} -> Connection map, C{_util});
    - L{ticketcontrol}: C{SSL_CTX_set_num_tickets} and the ticket keys, found
      (checked) among the local symbols of cryptography's extension;
    - L{twistedtls}: Twisted's TLS protocol internals (the tlsfast
      C{TLSMemoryBIOProtocol} family that overrides them lives there);
    - L{twistedsslverify}: C{twisted.internet._sslverify} (ALPN setup, trust roots);
    - L{twistedtcp}: C{twisted.internet.tcp} write queue (eager writes);
    - L{twistedepoll}: C{EPollReactor} dispatch (the lean reactor);
    - L{profilenames}: data only, the foreign functions the per-connection
      breakdown charges to phases (a rename mis-charges a profile, nothing
      more; C{tests/test_bench_breakdown.py} checks they exist).

Each declares the private names it uses, the versions it was tested with
(C{TESTED}, the same contract as L{tlsfast._versions.TESTED_RANGES}) and
checks at import that those names are there.  The result is its C{SURFACE}:
when C{SURFACE.problems} is not empty the callers take stock Twisted /
pyOpenSSL behaviour instead, and C{python -m tlsfast info} can say why.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field

from tlsfast._versions import TESTED_RANGES, VersionRange, installedVersion, rangeProblems, untestedAllowed

#: The Twisted versions the Twisted surfaces were tested with.
TWISTED_TESTED: VersionRange = TESTED_RANGES["Twisted"]


@dataclass
class Surface:
    """
    One foreign private surface and what its import-time check found.

    @ivar name: what is touched, for messages.
    @ivar distribution: the package it belongs to.
    @ivar tested: [low, high) major.minor versions it was tested with.
    @ivar problems: why it cannot be used; empty when it can.
    """

    name: str
    distribution: str
    tested: VersionRange
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return not self.problems

    def require(self, *checks: Iterable[str]) -> Surface:
        """Add the problems C{checks} found, and the version one; return self."""
        for found in checks:
            self.problems += [f"{self.name}: {problem}" for problem in found]
        self.problems += versionProblems(self.distribution, self.tested)
        return self


def versionProblems(distribution: str, tested: VersionRange) -> list[str]:
    """
    The L{tlsfast._versions.TESTED_RANGES} contract for one more surface:
    outside C{tested} the private names may mean something else, so the
    surface is off unless C{TLSFAST_ALLOW_UNTESTED=1}.
    """
    found = installedVersion(distribution)
    if found is None or untestedAllowed():
        return []
    return rangeProblems(distribution, found, tested)


def missingAttributes(owner: object, names: Iterable[str]) -> list[str]:
    """The C{names} that C{owner} (a class or module) does not have."""
    label = getattr(owner, "__qualname__", None) or getattr(owner, "__name__", repr(owner))
    return [f"{label} has no {name}" for name in names if not hasattr(owner, name)]


def missingParameters(owner: object, name: str, parameters: tuple[str, ...]) -> list[str]:
    """A problem unless C{owner.name} is a function taking exactly C{parameters}."""
    label = f"{getattr(owner, '__qualname__', None) or getattr(owner, '__name__', repr(owner))}.{name}"
    function = getattr(owner, name, None)
    if function is None:
        return [f"{label} is missing"]
    try:
        found = tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return [f"{label} is not a function"]
    if found != parameters:
        return [f"{label} takes {found}, expected {parameters}"]
    return []


def missingAssignments(function: object, names: Iterable[str]) -> list[str]:
    """The C{names} that C{function} (an C{__init__}) does not assign on C{self}."""
    label = getattr(function, "__qualname__", repr(function))
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))  # type: ignore[arg-type]  # any object: errors are reported
    except (OSError, TypeError, SyntaxError):
        return [f"the source of {label} cannot be read"]
    assigned = {node.attr for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name) and node.value.id == "self"}
    return [f"{label} does not set self.{name}" for name in names if name not in assigned]


#: The seam's modules, in the order C{tlsfast info} reports them.
MODULES = ("cryptobinding", "pyopenssl", "ticketcontrol", "twistedtls", "twistedsslverify", "twistedtcp", "twistedepoll")


def surfaces() -> list[Surface]:
    """
    Every surface's import-time check (importing each seam module): its
    C{SURFACE}, then any further ones it checks separately
    (C{MORE_SURFACES}, names of module attributes).
    """
    import importlib

    found = []
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        found.append(module.SURFACE)
        found += [getattr(module, attribute) for attribute in getattr(module, "MORE_SURFACES", ())]
    return found
