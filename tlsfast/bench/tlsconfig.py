"""
The TLS 1.3 suite and key-exchange group every benchmark process uses.

Two OpenSSL builds take part: cryptography's bundled one (pyOpenSSL, Twisted,
tlsfast) and the system one behind stdlib ``ssl`` (asyncio, uvloop, the load
generator).  stdlib ``ssl`` has no API for TLS 1.3 suites or groups, so both
are pinned by an ``OPENSSL_CONF`` file written for each run and put in every
child's environment before it starts (OpenSSL reads it once, at its first
initialisation).  pyOpenSSL contexts are pinned through the API as well
(:func:`pin_context`), so they do not depend on the file being read.
"""

from __future__ import annotations

import os
import re

DEFAULT_CIPHER = "TLS_AES_128_GCM_SHA256"
DEFAULT_GROUP = "X25519"

# The TLS 1.3 suites both builds implement (RFC 8446 §B.4; CCM suites are
# off by default and left out).
TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class ConfigError(ValueError):
    """A --cipher or --group value that cannot be used."""


def check(cipher: str, group: str) -> None:
    if cipher not in TLS13_SUITES:
        raise ConfigError(f"unknown TLS 1.3 cipher suite {cipher!r} (choose from {', '.join(TLS13_SUITES)})")
    if not _GROUP_NAME.match(group):
        raise ConfigError(f"bad key-exchange group name {group!r} (e.g. X25519, P-256, X25519MLKEM768)")


def write_openssl_conf(directory: str, cipher: str, group: str) -> str:
    """Write an OPENSSL_CONF file pinning ``cipher`` and ``group``; return its path."""
    check(cipher, group)
    path = os.path.join(directory, "openssl.cnf")
    with open(path, "w") as f:
        f.write(
            "# written by tlsfast bench for one run\n"
            "openssl_conf = openssl_init\n\n"
            "[openssl_init]\nssl_conf = ssl_sect\n\n"
            "[ssl_sect]\nsystem_default = system_default_sect\n\n"
            f"[system_default_sect]\nCiphersuites = {cipher}\nGroups = {group}\n")
    return path


def pin_context(context, cipher: str, group: str) -> None:
    """Restrict a pyOpenSSL ``Context`` to TLS 1.3 with ``cipher`` and ``group``.

    pyOpenSSL 26 has no ``Context.set_groups``; its cffi binding exposes
    ``SSL_CTX_set1_curves_list`` (the old name of ``SSL_CTX_set1_groups_list``).
    """
    from OpenSSL import SSL
    from OpenSSL._util import lib

    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.set_tls13_ciphersuites(cipher.encode())
    if lib.SSL_CTX_set1_curves_list(context._context, group.encode()) != 1:
        lib.ERR_clear_error()
        raise ConfigError(f"cryptography's OpenSSL does not know the group {group!r}")


def group_name(connection) -> str:
    """The key-exchange group a pyOpenSSL ``Connection`` negotiated."""
    from OpenSSL._util import ffi, lib

    if not hasattr(lib, "SSL_get0_group_name"):
        return "?"
    name = lib.SSL_get0_group_name(connection._ssl)
    return ffi.string(name).decode() if name != ffi.NULL else "?"


def describe_pyopenssl(connection) -> dict:
    return {"cipher": connection.get_cipher_name(), "group": group_name(connection),
            "version": connection.get_protocol_version_name()}
