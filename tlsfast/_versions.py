"""
The versions tlsfast's private surfaces were tested with, and the one check.

Standard library only: both the binding (L{tlsfast._binding}) and the seam
(L{tlsfast._foreign}) use it, and neither may import the other for it.
"""

from __future__ import annotations

import os
from importlib import metadata

VersionRange = tuple[tuple[int, int], tuple[int, int]]

# [low, high) by major.minor, tested in CI.  Outside them the structural checks
# still run; acceleration stays off unless TLSFAST_ALLOW_UNTESTED=1, because
# private surfaces may have changed meaning.
TESTED_RANGES: dict[str, VersionRange] = {
    "cryptography": ((50, 0), (51, 0)),
    "pyOpenSSL": ((26, 0), (27, 0)),
    "Twisted": ((26, 10), (27, 0)),  # pyproject pins the same
}


def installedVersion(distribution: str) -> str | None:
    """The installed version of C{distribution}, or C{None}."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def majorMinor(version: str) -> tuple[int, int]:
    """C{"26.4.0"} -> C{(26, 4)}; digits only, so C{"27.0rc1"} -> C{(27, 0)}."""
    parts = (version.split(".") + ["0"])[:2]
    major, minor = (int("".join(c for c in p if c.isdigit()) or 0) for p in parts)
    return major, minor


def untestedAllowed() -> bool:
    """Whether C{TLSFAST_ALLOW_UNTESTED=1} lifts the version ranges."""
    return os.environ.get("TLSFAST_ALLOW_UNTESTED", "") not in ("", "0")


def rangeProblems(distribution: str, found: str | None, tested: VersionRange) -> list[str]:
    """Why C{found} (a version of C{distribution}) may not be used; empty when it may."""
    if found is None:
        return [f"{distribution} is not installed"]
    low, high = tested
    if low <= majorMinor(found) < high:
        return []
    return [f"{distribution} {found} is outside the tested range "
            f"{low[0]}.{low[1]} <= v < {high[0]}.{high[1]} (set TLSFAST_ALLOW_UNTESTED=1 to use it anyway)"]
