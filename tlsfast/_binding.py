"""
Bind the compiled engine to the OpenSSL inside ``cryptography``.

That OpenSSL exports no symbols, so the engine calls it through function
pointers.  We take each address from cryptography's cffi library -- the same
one pyOpenSSL uses, so an ``SSL*`` made by pyOpenSSL can be driven from C --
check that the function exists with exactly the C signature of the spec
(tlsfast/_openssl_spec.py: the engine's declarations are generated from it,
and the compiled engine reports back what it was built with), and fill the
engine's table once.  Any mismatch leaves acceleration off with a reason that
names the function and the versions found: never a call through a wrong
pointer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import ModuleType

from tlsfast import _openssl_spec
from tlsfast._versions import TESTED_RANGES, installedVersion, rangeProblems, untestedAllowed


@dataclass
class BackendInfo:
    """What `python -m tlsfast info` reports."""

    tlsfast_version: str
    accelerated: bool
    cryptography_version: str | None = None
    pyopenssl_version: str | None = None
    openssl_version: str | None = None
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        state = "active" if self.accelerated else "OFF (stock pyOpenSSL path)"
        out = [
            f"tlsfast        {self.tlsfast_version}",
            f"acceleration   {state}",
            f"cryptography   {self.cryptography_version or 'not installed'}",
            f"pyOpenSSL      {self.pyopenssl_version or 'not installed'}",
            f"OpenSSL        {self.openssl_version or 'unknown'}",
        ]
        out += [f"problem        {p}" for p in self.problems]
        return out


def check_function_table(ffi, lib) -> tuple[dict[str, int], list[str]]:
    """Addresses of every function the spec lists, and what is wrong (names, cffi types, constants)."""
    addresses: dict[str, int] = {}
    problems: list[str] = []
    for function in _openssl_spec.FUNCTIONS:
        name, expected = function.name, function.pointer_type
        if not hasattr(lib, name):
            problems.append(f"OpenSSL function {name} is missing from cryptography's binding")
            continue
        try:
            pointer = ffi.addressof(lib, name)
            found = ffi.typeof(pointer)
            # cffi's own reading of the spec's C type: spelling and const aside,
            # equal types are the same (interned) object.
            matches = found is ffi.typeof(expected)
        except (AttributeError, TypeError, ffi.error) as exc:
            problems.append(f"cannot check OpenSSL function {name} against {expected}: {exc}")
            continue
        if not matches:
            problems.append(f"OpenSSL function {name} has signature {found.cname}, engine expects {expected}")
            continue
        addresses[name] = int(ffi.cast("uintptr_t", pointer))
    for name, value in _openssl_spec.CONSTANTS.items():
        found_value = getattr(lib, name, None)
        if found_value != value:
            problems.append(f"OpenSSL constant {name} is {found_value}, engine expects {value}")
    return addresses, problems


def check_compiled_table(engine: ModuleType) -> list[str]:
    """What differs between the spec and the table ``engine`` (tlsfast._engine) was compiled with."""
    compiled_table = getattr(engine, "compiled_table", None)
    if compiled_table is None:  # built before the table had one spec
        return ["compiled engine tlsfast._engine does not report its OpenSSL table (no compiled_table()): "
                "rebuild the engine"]
    compiled_functions, compiled_constants = compiled_table()
    spec_functions, spec_constants = _openssl_spec.table()
    problems = []
    for kind, compiled, spec in (("function", compiled_functions, spec_functions),
                                 ("constant", compiled_constants, spec_constants)):
        for name in sorted(compiled.keys() | spec.keys()):
            if compiled.get(name) != spec.get(name):
                problems.append(
                    f"OpenSSL {kind} {name} is {spec.get(name)!r} in tlsfast/_openssl_spec.py but the engine "
                    f"was compiled with {compiled.get(name)!r}: rebuild the engine")
    return problems


def check_versions(versions: dict[str, str | None]) -> list[str]:
    """Why the installed cryptography / pyOpenSSL may not be accelerated (L{TESTED_RANGES})."""
    return [problem for dist in ("cryptography", "pyOpenSSL")
            for problem in rangeProblems(dist, versions.get(dist), TESTED_RANGES[dist])]


def bind(tlsfast_version: str) -> BackendInfo:
    """Check everything and, if all is well, install the engine's table."""
    info = BackendInfo(tlsfast_version=tlsfast_version, accelerated=False)
    info.cryptography_version = installedVersion("cryptography")
    info.pyopenssl_version = installedVersion("pyOpenSSL")
    if os.environ.get("TLSFAST_DISABLE", "") not in ("", "0"):
        info.problems.append("disabled by TLSFAST_DISABLE")
    try:
        from OpenSSL import SSL

        from tlsfast._foreign import cryptobinding, pyopenssl
    except ImportError as exc:
        info.problems.append(f"cannot import cryptography/pyOpenSSL bindings: {exc}")
        return info
    ffi, lib = cryptobinding.ffi, cryptobinding.lib
    info.openssl_version = ffi.string(lib.OpenSSL_version(lib.OPENSSL_VERSION)).decode()
    if pyopenssl.ffi is not ffi:
        info.problems.append("pyOpenSSL does not use cryptography's cffi library")
    addresses, problems = check_function_table(ffi, lib)
    info.problems += problems
    info.problems += pyopenssl.engineInternalsProblems()
    if not untestedAllowed():
        info.problems += check_versions(
            {"cryptography": info.cryptography_version, "pyOpenSSL": info.pyopenssl_version})
    try:
        from tlsfast import _engine
    except ImportError as exc:
        info.problems.append(f"compiled engine tlsfast._engine cannot be imported: {exc}")
        return info
    info.problems += check_compiled_table(_engine)
    if info.problems:
        return info
    _engine.install_python_helpers(ffi, lib, SSL.WantReadError, SSL.Connection)
    _engine.install_function_table(addresses)
    info.accelerated = True
    return info
