"""
The TLS parameters every benchmark process uses: protocol version, cipher
suite, key-exchange group, server key type and mutual TLS (:class:`TLSParams`),
how the command line's friendly names map to OpenSSL's (:func:`resolve`), and
how a negotiated connection is checked against them (:func:`mismatches`).

Two OpenSSL builds take part: cryptography's bundled one (pyOpenSSL, Twisted,
tlsfast) and the system one behind stdlib ``ssl`` (asyncio, uvloop, the load
generator).  stdlib ``ssl`` has no API for TLS 1.3 suites or groups, so both
are pinned by an ``OPENSSL_CONF`` file written for each run and put in every
child's environment before it starts (OpenSSL reads it once, at its first
initialisation).  The system OpenSSL silently ignores a group it does not
know in that file, so :func:`stdlib_knows_group` asks it directly.
pyOpenSSL contexts are pinned through the API as well (:func:`pin_context`),
so they do not depend on the file being read.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass

DEFAULT_CIPHER = "TLS_AES_128_GCM_SHA256"
DEFAULT_GROUP = "X25519"
TLS_VERSIONS = ("1.2", "1.3")
KEY_TYPES = ("ecdsa-p256", "rsa-2048", "rsa-4096", "ed25519")

# Friendly name -> (TLS 1.3 suite, TLS 1.2 suite for an ECDSA/Ed25519 key,
# TLS 1.2 suite for an RSA key).  TLS 1.2 suites are ECDHE only (forward
# secrecy, as every stack's default); Ed25519 certificates use the ECDSA
# suites in TLS 1.2 (RFC 8422 §5.1.1).  CCM suites are off by default in
# both builds and left out.
CIPHERS = {
    "AES-128-GCM": ("TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    "AES-256-GCM": ("TLS_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
    "ChaCha20-Poly1305": ("TLS_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305",
                          "ECDHE-RSA-CHACHA20-POLY1305"),
}
TLS13_SUITES = tuple(suites[0] for suites in CIPHERS.values())
TLS12_SUITES = tuple(suite for suites in CIPHERS.values() for suite in suites[1:])

# Friendly group name -> OpenSSL's; the names each build reports for a
# negotiated group differ ("P-256", "secp256r1", "prime256v1"), see _GROUP_ALIASES.
GROUPS = {"x25519": "X25519", "secp256r1": "P-256", "X25519MLKEM768": "X25519MLKEM768"}
_GROUP_ALIASES = {"p-256": "secp256r1", "prime256v1": "secp256r1", "secp256r1": "secp256r1"}
TLS13_ONLY_GROUPS = ("X25519MLKEM768",)  # hybrid post-quantum groups (no TLS 1.2 code point)
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class ConfigError(ValueError):
    """A TLS parameter that cannot be used (a bad --cipher, --group, ...)."""


@dataclass(frozen=True)
class TLSParams:
    """One parameter set, with OpenSSL's names (see :func:`resolve`)."""

    version: str = "1.3"
    cipher: str = DEFAULT_CIPHER
    group: str = DEFAULT_GROUP
    key_type: str = "ecdsa-p256"
    mtls: bool = False

    @property
    def protocol(self) -> str:
        """The version as both OpenSSL builds name it when negotiated."""
        return f"TLSv{self.version}"

    def arguments(self) -> list[str]:
        """This parameter set on a child's command line (see :func:`add_arguments`)."""
        return (["--tls-version", self.version, "--cipher", self.cipher, "--group", self.group,
                 "--key-type", self.key_type] + (["--mtls"] if self.mtls else []))

    def label(self) -> str:
        return (f"TLS {self.version} {self.cipher} / {self.group} / {self.key_type}"
                + (" / mTLS" if self.mtls else ""))

    def to_json(self) -> dict:
        return asdict(self)


def add_arguments(parser) -> None:
    """The options a child process takes for :meth:`TLSParams.arguments`."""
    parser.add_argument("--tls-version", choices=TLS_VERSIONS, default="1.3")
    parser.add_argument("--cipher", default=DEFAULT_CIPHER)
    parser.add_argument("--group", default=DEFAULT_GROUP)
    parser.add_argument("--key-type", choices=KEY_TYPES, default="ecdsa-p256")
    parser.add_argument("--mtls", action="store_true")


def from_arguments(args) -> TLSParams:
    return TLSParams(args.tls_version, args.cipher, args.group, args.key_type, args.mtls)


def _lookup(name: str, table) -> str | None:
    """``name`` in ``table``'s keys, ignoring case."""
    return next((key for key in table if key.lower() == name.lower()), None)


def resolve(version: str = "1.3", cipher: str = "AES-128-GCM", group: str = "x25519",
            key_type: str = "ecdsa-p256", mtls: bool = False) -> TLSParams:
    """
    The parameter set the command line asks for, with OpenSSL's names.

    ``cipher`` is a friendly name (``AES-128-GCM``, ``AES-256-GCM``,
    ``ChaCha20-Poly1305``, any case), mapped to the TLS 1.3 suite or the
    TLS 1.2 ECDHE suite for ``key_type``; OpenSSL's own names are accepted
    when they fit ``version`` and ``key_type``.  ``group`` is a friendly
    name or any name OpenSSL knows (checked later, by :func:`pin_context`).
    """
    if version not in TLS_VERSIONS:
        raise ConfigError(f"unknown TLS version {version!r} (choose from {', '.join(TLS_VERSIONS)})")
    if key_type not in KEY_TYPES:
        raise ConfigError(f"unknown key type {key_type!r} (choose from {', '.join(KEY_TYPES)})")
    column = 0 if version == "1.3" else (2 if key_type.startswith("rsa") else 1)
    friendly = _lookup(cipher, CIPHERS)
    if friendly is not None:
        suite = CIPHERS[friendly][column]
    elif cipher in TLS13_SUITES + TLS12_SUITES:
        suite = cipher
        fits = [suites[column] for suites in CIPHERS.values()]
        if suite not in fits:
            kind = "TLS 1.3" if suite in TLS13_SUITES else "TLS 1.2"
            raise ConfigError(f"cipher suite {suite} is a {kind} suite that does not fit TLS {version} with an "
                              f"{key_type} key (use {', '.join(CIPHERS)} or one of {', '.join(fits)})")
    else:
        raise ConfigError(f"unknown TLS 1.3 cipher suite {cipher!r} (choose from {', '.join(CIPHERS)}; "
                          f"or OpenSSL's {', '.join(TLS13_SUITES)})")
    friendly_group = _lookup(group, GROUPS)
    openssl_group = GROUPS[friendly_group] if friendly_group else group
    if not _GROUP_NAME.match(openssl_group):
        raise ConfigError(f"bad key-exchange group name {group!r} (e.g. {', '.join(GROUPS)})")
    if version == "1.2" and openssl_group in TLS13_ONLY_GROUPS:
        raise ConfigError(f"group {openssl_group} needs TLS 1.3 (--tls-version 1.3)")
    return TLSParams(version, suite, openssl_group, key_type, mtls)


def write_openssl_conf(directory: str, params: TLSParams) -> str:
    """Write an OPENSSL_CONF file pinning ``params``' suite and group; return its path."""
    path = os.path.join(directory, "openssl.cnf")
    suites = (f"Ciphersuites = {params.cipher}\n" if params.version == "1.3"
              else f"CipherString = {params.cipher}\n")
    with open(path, "w") as f:
        f.write(
            "# written by tlsfast bench for one run\n"
            "openssl_conf = openssl_init\n\n"
            "[openssl_init]\nssl_conf = ssl_sect\n\n"
            "[ssl_sect]\nsystem_default = system_default_sect\n\n"
            f"[system_default_sect]\n{suites}Groups = {params.group}\n")
    return path


def pin_context(context, params: TLSParams) -> None:
    """Restrict a pyOpenSSL ``Context`` to ``params``' version, suite and group.

    pyOpenSSL 26 has no ``Context.set_groups``; its cffi binding exposes
    ``SSL_CTX_set1_curves_list`` (the old name of ``SSL_CTX_set1_groups_list``).
    """
    from OpenSSL import SSL

    from tlsfast._foreign import pyopenssl
    from tlsfast._foreign.cryptobinding import lib

    version = SSL.TLS1_3_VERSION if params.version == "1.3" else SSL.TLS1_2_VERSION
    context.set_min_proto_version(version)
    context.set_max_proto_version(version)
    if params.version == "1.3":
        context.set_tls13_ciphersuites(params.cipher.encode())
    else:
        context.set_cipher_list(params.cipher.encode())
    if lib.SSL_CTX_set1_curves_list(pyopenssl.contextPointer(context), params.group.encode()) != 1:
        lib.ERR_clear_error()
        raise ConfigError(f"cryptography's OpenSSL does not know the group {params.group!r}")


def stdlib_knows_group(group: str) -> bool:
    """Whether the OpenSSL behind stdlib ``ssl`` (the system's) implements
    ``group``: ``SSL_CTX_set1_groups_list`` on the very libssl ``_ssl`` uses
    (OpenSSL 3.0 has no ML-KEM, for one)."""
    import ctypes

    library = _ssl_library()
    if library is None:  # cannot ask: assume it does, the handshake will tell
        return True
    libssl = ctypes.CDLL(library)
    libssl.TLS_method.restype = ctypes.c_void_p
    libssl.SSL_CTX_new.restype = ctypes.c_void_p
    libssl.SSL_CTX_new.argtypes = [ctypes.c_void_p]
    libssl.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    libssl.SSL_CTX_ctrl.restype = ctypes.c_long
    libssl.SSL_CTX_free.argtypes = [ctypes.c_void_p]
    ctx = libssl.SSL_CTX_new(libssl.TLS_method())
    if not ctx:
        return True
    try:
        set_groups_list = 92  # SSL_CTRL_SET_GROUPS_LIST (ssl.h), what SSL_CTX_set1_groups_list expands to
        return libssl.SSL_CTX_ctrl(ctx, set_groups_list, 0, ctypes.c_char_p(group.encode())) == 1
    finally:
        libssl.SSL_CTX_free(ctx)


def _ssl_library() -> str | None:
    """The path of the libssl that the ``_ssl`` extension is linked with."""
    import _ssl

    del _ssl  # imported so that its libssl is mapped
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "/libssl.so" in path:
                    return path
    except OSError:
        pass
    return None


def canonical_group(name: str) -> str:
    """One spelling per group, whichever build reported it."""
    return _GROUP_ALIASES.get(name.lower(), name.lower())


def mismatches(params: TLSParams, negotiated: dict) -> list[str]:
    """How what a stack negotiated differs from ``params`` (empty: as asked).
    Unknown values (``?``, e.g. the group stdlib ``ssl`` cannot tell) are
    not mismatches."""
    out = []
    version = negotiated.get("version", "?")
    if not version.startswith("?") and version != params.protocol:
        out.append(f"version {version}, not {params.protocol}")
    cipher = negotiated.get("cipher", "?")
    if not cipher.startswith("?") and cipher != params.cipher:
        out.append(f"cipher {cipher}, not {params.cipher}")
    group = negotiated.get("group", "?").split()[0]
    if not group.startswith("?") and canonical_group(group) != canonical_group(params.group):
        out.append(f"group {group}, not {params.group}")
    if "mtls" in negotiated and negotiated["mtls"] != params.mtls:
        out.append("a client certificate" + (" was not presented" if params.mtls else " was presented"))
    return out


def group_name(connection) -> str:
    """The key-exchange group a pyOpenSSL ``Connection`` negotiated."""
    from tlsfast._foreign import pyopenssl
    from tlsfast._foreign.cryptobinding import ffi, lib

    if not hasattr(lib, "SSL_get0_group_name"):
        return "?"
    name = lib.SSL_get0_group_name(pyopenssl.sslPointer(connection))
    return ffi.string(name).decode() if name != ffi.NULL else "?"


def describe_pyopenssl(connection) -> dict:
    return {"cipher": connection.get_cipher_name(), "group": group_name(connection),
            "version": connection.get_protocol_version_name()}
