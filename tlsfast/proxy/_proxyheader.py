"""
The PROXY protocol header (HAProxy's spec, versions 1 and 2) that tells a
backend who the client is: sent once, first thing on the backend's TCP
connection (before its TLS handshake, when it has one), as haproxy's
``send-proxy`` / ``send-proxy-v2-ssl`` do and nginx's ``proxy_protocol``
expects.

Version 2 also carries what TLS negotiated with the client, as TLVs:
ALPN, the SNI name (``AUTHORITY``) and an ``SSL`` TLV with the version,
cipher and client certificate's common name.

Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_PROXY = 0x21  # version 2, command PROXY
_V2_TCP4, _V2_TCP6 = 0x11, 0x21

PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_SUBTYPE_SSL_CN = 0x22
PP2_SUBTYPE_SSL_CIPHER = 0x23
PP2_CLIENT_SSL = 0x01
PP2_CLIENT_CERT_CONN = 0x02


@dataclass
class ClientTLS:
    """What the client's TLS connection negotiated (for version 2's TLVs)."""

    version: str | None = None
    cipher: str | None = None
    serverName: str | bytes | None = None  # the SNI (see serverNameBytes)
    alpn: bytes | None = None
    certificateCN: str | None = None  # a verified client certificate's common name


def _addresses(source: tuple[str, int], destination: tuple[str, int]):
    """Both addresses as ip_address objects of one family, or None (UNKNOWN)."""
    try:
        src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    except ValueError:
        return None
    if src.version != dst.version:  # e.g. a v4-mapped listener: say what we can
        if src.version == 6 and src.ipv4_mapped and dst.version == 4:
            src = src.ipv4_mapped
        elif dst.version == 6 and dst.ipv4_mapped and src.version == 4:
            dst = dst.ipv4_mapped
        else:
            return None
    return src, dst


def headerV1(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """C{PROXY TCP4 src dst sport dport\\r\\n} (C{PROXY UNKNOWN} if not IP)."""
    addresses = _addresses(source, destination)
    if addresses is None:
        return b"PROXY UNKNOWN\r\n"
    src, dst = addresses
    family = "TCP4" if src.version == 4 else "TCP6"
    return f"PROXY {family} {src} {dst} {source[1]} {destination[1]}\r\n".encode("ascii")


def serverNameBytes(serverName: str | bytes) -> bytes:
    """
    The SNI as the client sent it, for the C{AUTHORITY} TLV: haproxy's spec
    asks for "an exact copy of the server_name extension", not a
    re-encoding (which fails on what clients may send: C{a..b}, a 64-byte
    label, raw UTF-8).  Text is as L{ConnectionInfo.serverName} holds it:
    bytes that are not ASCII as C{surrogateescape} surrogates.
    """
    if isinstance(serverName, bytes):
        return serverName
    try:
        return serverName.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # not from a decoded SNI: say what we can
        return serverName.encode("utf-8", "replace")


def _tlv(kind: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"PROXY v2 TLV 0x{kind:02x} too long ({len(value)} bytes)")
    return struct.pack("!BH", kind, len(value)) + value


def headerV2(source: tuple[str, int], destination: tuple[str, int], tls: ClientTLS | None = None) -> bytes:
    """The binary version 2 header, with TLS TLVs when C{tls} is given."""
    addresses = _addresses(source, destination)
    if addresses is None:
        family, body = 0x00, b""  # UNSPEC: the backend uses the connection's own addresses
    else:
        src, dst = addresses
        family = _V2_TCP4 if src.version == 4 else _V2_TCP6
        body = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
    if tls is not None:
        if tls.alpn:
            body += _tlv(PP2_TYPE_ALPN, tls.alpn)
        if tls.serverName:
            body += _tlv(PP2_TYPE_AUTHORITY, serverNameBytes(tls.serverName))
        flags = PP2_CLIENT_SSL | (PP2_CLIENT_CERT_CONN if tls.certificateCN is not None else 0)
        sub = b""
        if tls.version:
            sub += _tlv(PP2_SUBTYPE_SSL_VERSION, tls.version.encode("ascii"))
        if tls.certificateCN is not None:
            sub += _tlv(PP2_SUBTYPE_SSL_CN, tls.certificateCN.encode("utf-8"))
        if tls.cipher:
            sub += _tlv(PP2_SUBTYPE_SSL_CIPHER, tls.cipher.encode("ascii"))
        # verify = 0: the certificate (if any) was verified, or the handshake
        # would have failed.
        body += _tlv(PP2_TYPE_SSL, struct.pack("!BI", flags, 0) + sub)
    return V2_SIGNATURE + struct.pack("!BBH", _V2_PROXY, family, len(body)) + body
