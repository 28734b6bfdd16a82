"""
Addresses as people read them in logs and warnings: C{host:port}, IPv6
hosts bracketed (C{[::1]:443}).  One formatter for the Twisted glue's
warnings and the proxy's log lines.
"""

from __future__ import annotations


def hostPort(host: str, port: int) -> str:
    """C{host:port}, an IPv6 host bracketed."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describeAddress(address: object) -> str:
    """A Twisted address: C{host:port} (IPv6 hosts bracketed), a UNIX socket's path, or repr."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if isinstance(host, str) and isinstance(port, int):
        return hostPort(host, port)
    name = getattr(address, "name", None)
    if isinstance(name, (str, bytes)):
        return name.decode(errors="replace") if isinstance(name, bytes) else name
    return repr(address)
