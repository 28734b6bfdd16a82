"""
The certificates a listener presents (to clients, and to backends with
mutual TLS) and when each expires: for C{--check} and for the
C{tlsfast_proxy_certificate_expiry_timestamp_seconds} gauge.
"""

from __future__ import annotations

from cryptography import x509

from tlsfast.proxy._config import ListenerConfig


def presentedCertificates(config: ListenerConfig) -> list[str]:
    """The PEM files holding the certificates C{config} presents (a chain file counts once)."""
    paths = [config.cert] if config.cert else []
    for files in config.sni_certs.values():
        paths.append(files if isinstance(files, str) else files[0])
    if config.backend_cert:
        paths.append(config.backend_cert)
    return list(dict.fromkeys(paths))  # one per file, in order


def expiryTimestamp(path: str) -> float:
    """
    Seconds since the epoch at which the first certificate in C{path}
    (the leaf of a chain file) stops being valid.  Raises C{OSError} or
    C{ValueError} for an unreadable file or one without a certificate.
    """
    with open(path, "rb") as f:
        pem = f.read()
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()


def expiryTimestamps(config: ListenerConfig) -> dict[str, float]:
    """C{{path: expiry}} for what L{presentedCertificates} finds readable."""
    expiries = {}
    for path in presentedCertificates(config):
        try:
            expiries[path] = expiryTimestamp(path)
        except (OSError, ValueError):  # the TLS setup has said why, or will
            continue
    return expiries
