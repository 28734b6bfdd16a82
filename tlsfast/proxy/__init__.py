"""
``tlsfast proxy``: a TLS terminating / originating / re-encrypting TCP
proxy on Twisted with tlsfast's engine (see docs/proxy.md).

- L{tlsfast.proxy._config}: listener configuration (flags or TOML), checked up front;
- L{tlsfast.proxy._relay}: the data path (client side, backend side, flow control);
- L{tlsfast.proxy._main}: the command line and the process lifecycle.
"""

from tlsfast.proxy._config import ListenerConfig, ProxyConfig, ProxyConfigError, loadToml
from tlsfast.proxy._main import addParser, run, serve

__all__ = ["ListenerConfig", "ProxyConfig", "ProxyConfigError", "addParser", "loadToml", "run", "serve"]
