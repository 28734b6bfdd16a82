"""
C{--user}/C{--group}: start as root to bind privileged ports and read keys,
then run as an unprivileged user.  The names are resolved before anything
binds (a typo is a configuration error, exit status 2); the switch itself
happens once every listening socket is open, before the first connection
is served.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from tlsfast.proxy._config import ProxyConfigError


@dataclass(frozen=True)
class Identity:
    """Who the proxy becomes: numeric ids, and the names for the log."""

    uid: int
    gid: int
    user: str
    group: str


def resolveIdentity(user: str | None, group: str | None, needRoot: bool = True) -> Identity | None:
    """
    The identity C{user}/C{group} name (C{None} when neither is given).
    The group defaults to the user's primary group.  Raises
    L{ProxyConfigError} for an unknown name, or (C{needRoot}) when the
    process is not root: it could not switch.
    """
    if user is None and group is None:
        return None
    if needRoot and os.geteuid() != 0:
        raise ProxyConfigError(f"--user/--group need the proxy to start as root (it runs as uid {os.geteuid()})")
    uid, gid = os.getuid(), os.getgid()
    if user is not None:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise ProxyConfigError(f"user {user!r} does not exist") from None
        uid, gid = entry.pw_uid, entry.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ProxyConfigError(f"group {group!r} does not exist") from None
    return Identity(uid, gid, user or _name(pwd.getpwuid, uid), group or _name(grp.getgrgid, gid))


def _name(lookup, number: int) -> str:
    try:
        return lookup(number)[0]
    except KeyError:  # an id without a name is valid
        return str(number)


def dropPrivileges(identity: Identity) -> None:
    """
    Become C{identity} for good.  The order matters: supplementary groups
    and the group can only be changed while still root, so they go first.
    """
    os.setgroups([])
    os.setgid(identity.gid)
    os.setuid(identity.uid)
    if identity.uid != 0 and os.geteuid() == 0:  # setuid() as root sets all three uids; make sure
        raise OSError("still root after setuid")
