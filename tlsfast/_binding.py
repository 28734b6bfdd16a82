"""
Bind the compiled engine to the OpenSSL inside ``cryptography``.

That OpenSSL exports no symbols, so the engine calls it through function
pointers.  We take each address from cryptography's cffi library -- the same
one pyOpenSSL uses, so an ``SSL*`` made by pyOpenSSL can be driven from C --
check that the function exists with exactly the C signature the engine was
compiled for, and fill the engine's table once.  Any mismatch leaves
acceleration off with a reason that names the function and the versions
found: never a call through a wrong pointer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata

# The C signature (as cffi spells it) the engine's function table was compiled
# for; must match _ext/openssl.pxd.
EXPECTED_SIGNATURES = {
    "SSL_read": "int(*)(SSL *, void *, int)",
    "SSL_write": "int(*)(SSL *, void *, int)",
    "SSL_do_handshake": "int(*)(SSL *)",
    "SSL_get_error": "int(*)(SSL *, int)",
    "SSL_shutdown": "int(*)(SSL *)",
    "SSL_pending": "int(*)(SSL *)",
    "SSL_get_shutdown": "int(*)(SSL *)",
    "SSL_state_string_long": "char *(*)(SSL *)",
    "BIO_read": "int(*)(BIO *, void *, int)",
    "BIO_write": "int(*)(BIO *, void *, int)",
    "BIO_get_mem_data": "long(*)(BIO *, char * *)",
    "BIO_set_mem_eof_return": "long(*)(BIO *, int)",
    "ERR_clear_error": "void(*)()",
    "ERR_peek_error": "unsigned long(*)()",
}

# ABI constants compiled into the engine (_ext/openssl.pxd).
EXPECTED_CONSTANTS = {
    "SSL_ERROR_NONE": 0,
    "SSL_ERROR_SSL": 1,
    "SSL_ERROR_WANT_READ": 2,
    "SSL_ERROR_WANT_WRITE": 3,
    "SSL_ERROR_SYSCALL": 5,
    "SSL_ERROR_ZERO_RETURN": 6,
    "SSL_SENT_SHUTDOWN": 1,
    "SSL_RECEIVED_SHUTDOWN": 2,
}

# pyOpenSSL Connection internals the engine relies on.
CONNECTION_INTERNALS = ("_ssl", "_into_ssl", "_from_ssl", "_context", "_raise_ssl_error")

# Version ranges tested in CI ([low, high) by major.minor).  Outside them the
# structural checks above still run; acceleration stays off unless
# TLSFAST_ALLOW_UNTESTED=1, because private surfaces may have changed meaning.
TESTED_RANGES = {
    "cryptography": ((50, 0), (51, 0)),
    "pyOpenSSL": ((26, 0), (27, 0)),
}


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


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _major_minor(version: str) -> tuple[int, int]:
    parts = (version.split(".") + ["0"])[:2]
    major, minor = (int("".join(c for c in p if c.isdigit()) or 0) for p in parts)
    return major, minor


def check_function_table(ffi, lib) -> tuple[dict[str, int], list[str]]:
    """Addresses of every function the engine needs, and what is wrong."""
    addresses: dict[str, int] = {}
    problems: list[str] = []
    for name, expected in EXPECTED_SIGNATURES.items():
        if not hasattr(lib, name):
            problems.append(f"OpenSSL function {name} is missing from cryptography's binding")
            continue
        try:
            pointer = ffi.addressof(lib, name)
            found = ffi.typeof(pointer).cname
        except (AttributeError, TypeError, ffi.error) as exc:
            problems.append(f"cannot take the address of OpenSSL function {name}: {exc}")
            continue
        if found != expected:
            problems.append(f"OpenSSL function {name} has signature {found}, engine expects {expected}")
            continue
        addresses[name] = int(ffi.cast("uintptr_t", pointer))
    for name, value in EXPECTED_CONSTANTS.items():
        found_value = getattr(lib, name, None)
        if found_value != value:
            problems.append(f"OpenSSL constant {name} is {found_value}, engine expects {value}")
    return addresses, problems


def check_versions(versions: dict[str, str | None]) -> list[str]:
    problems = []
    for dist, (low, high) in TESTED_RANGES.items():
        found = versions.get(dist)
        if found is None:
            problems.append(f"{dist} is not installed")
        elif not (low <= _major_minor(found) < high):
            problems.append(
                f"{dist} {found} is outside the tested range "
                f"{low[0]}.{low[1]} <= v < {high[0]}.{high[1]} "
                "(set TLSFAST_ALLOW_UNTESTED=1 to accelerate anyway)")
    return problems


def check_connection_internals() -> list[str]:
    from OpenSSL import SSL

    context = SSL.Context(SSL.TLS_METHOD)
    connection = SSL.Connection(context, None)
    return [
        f"pyOpenSSL Connection lacks {name}, which the engine drives"
        for name in CONNECTION_INTERNALS
        if not hasattr(connection, name)
    ]


def bind(tlsfast_version: str) -> BackendInfo:
    """Check everything and, if all is well, install the engine's table."""
    info = BackendInfo(tlsfast_version=tlsfast_version, accelerated=False)
    info.cryptography_version = _version("cryptography")
    info.pyopenssl_version = _version("pyOpenSSL")
    if os.environ.get("TLSFAST_DISABLE", "") not in ("", "0"):
        info.problems.append("disabled by TLSFAST_DISABLE")
    try:
        from OpenSSL import SSL

        from tlsfast._foreign import cryptobinding as _openssl
        from tlsfast._foreign import pyopenssl as _util
    except ImportError as exc:
        info.problems.append(f"cannot import cryptography/pyOpenSSL bindings: {exc}")
        return info
    ffi, lib = _openssl.ffi, _openssl.lib
    info.openssl_version = ffi.string(lib.OpenSSL_version(lib.OPENSSL_VERSION)).decode()
    if _util.ffi is not ffi:
        info.problems.append("pyOpenSSL does not use cryptography's cffi library")
    addresses, problems = check_function_table(ffi, lib)
    info.problems += problems
    info.problems += check_connection_internals()
    if os.environ.get("TLSFAST_ALLOW_UNTESTED", "") in ("", "0"):
        info.problems += check_versions(
            {"cryptography": info.cryptography_version, "pyOpenSSL": info.pyopenssl_version})
    try:
        from tlsfast import _engine
    except ImportError as exc:
        info.problems.append(f"compiled engine tlsfast._engine cannot be imported: {exc}")
        return info
    if info.problems:
        return info
    _engine.install_python_helpers(ffi, lib, SSL.WantReadError, SSL.Connection)
    _engine.install_function_table(addresses)
    info.accelerated = True
    return info
