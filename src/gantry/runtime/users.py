"""Resolve Docker's ``--user``/``USER`` forms against an image's /etc/passwd and /etc/group.

Accepted, as Docker: ``""`` (root), ``name``, ``uid``, ``name:group``, ``uid:gid``,
``name:gid``, ``uid:group``. Names must exist in the image; numbers need not (a numeric uid
absent from passwd runs with gid 0 and home ``/``). Supplementary groups come from
/etc/group membership only when no group was given, then ``group_add`` (``--group-add``)
is appended; the primary gid always comes first in the list. The image's files are read with :mod:`gantry.runtime.rootfs`, never following
a symlink out of the rootfs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from gantry.errors import ContainerError
from gantry.runtime.rootfs import read_file_in_root

MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str
    shell: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class ExecUser:
    """Who the container process runs as."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"
    name: str | None = None


def _lines(data: bytes) -> list[list[str]]:
    out = []
    for raw in data.decode("utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.append(line.split(":"))
    return out


def _int(s: str) -> int | None:
    s = s.strip()
    if not s.isdigit():
        return None
    n = int(s)
    return n if n <= MAX_ID else None


def parse_passwd(data: bytes) -> list[PasswdEntry]:
    """Entries of a passwd file; malformed lines are skipped (as libc does)."""
    out = []
    for f in _lines(data):
        if len(f) < 4:
            continue
        uid, gid = _int(f[2]), _int(f[3])
        if uid is None or gid is None:
            continue
        out.append(
            PasswdEntry(f[0], uid, gid, f[5] if len(f) > 5 else "", f[6] if len(f) > 6 else "")
        )
    return out


def parse_group(data: bytes) -> list[GroupEntry]:
    """Entries of a group file; malformed lines are skipped."""
    out = []
    for f in _lines(data):
        if len(f) < 3:
            continue
        gid = _int(f[2])
        if gid is None:
            continue
        members = tuple(m.strip() for m in f[3].split(",") if m.strip()) if len(f) > 3 else ()
        out.append(GroupEntry(f[0], gid, members))
    return out


def _numeric(s: str, what: str) -> int | None:
    if not s.isdigit():
        return None
    n = int(s)
    if n > MAX_ID:
        raise ContainerError(f"{what} {s} is out of range (0-{MAX_ID})")
    return n


def resolve_user(
    rootfs: str | os.PathLike[str] | None,
    user: str = "",
    *,
    group_add: Sequence[str] = (),
    passwd: bytes | None = None,
    group: bytes | None = None,
) -> ExecUser:
    """Resolve ``user`` (Docker's ``--user`` syntax) inside ``rootfs``.

    ``passwd``/``group`` override the files read from ``rootfs`` (which may then be None).
    Raises ``ContainerError`` with Docker's wording when a name is not found.
    """
    if passwd is None:
        passwd = read_file_in_root(rootfs, "/etc/passwd") if rootfs is not None else None
    if group is None:
        group = read_file_in_root(rootfs, "/etc/group") if rootfs is not None else None
    users = parse_passwd(passwd or b"")
    groups = parse_group(group or b"")

    user_arg, _, group_arg = user.partition(":")
    has_group = ":" in user
    if has_group and not group_arg:
        raise ContainerError(f"invalid user specification {user!r}: empty group")
    if not user_arg:
        if has_group:
            raise ContainerError(f"invalid user specification {user!r}: empty user")
        user_arg = "0"

    # The user: by name (must exist), or by number (entry optional).
    uid_n = _numeric(user_arg, "uid")
    entry = next(
        (u for u in users if (u.uid == uid_n if uid_n is not None else u.name == user_arg)),
        None,
    )
    if entry is None and uid_n is None:
        raise ContainerError(f"unable to find user {user_arg}: no matching entries in passwd file")
    if entry is not None:
        uid, gid, home, name = entry.uid, entry.gid, entry.home or "/", entry.name
    else:
        assert uid_n is not None
        uid, gid, home, name = uid_n, 0, "/", None
        # root without an entry still gets root's home, as runc/Docker do.
        if uid == 0:
            home = "/root"

    sgids: list[int] = []
    if has_group:
        gid_n = _numeric(group_arg, "gid")
        g = next(
            (x for x in groups if x.name == group_arg or (gid_n is not None and x.gid == gid_n)),
            None,
        )
        if g is not None:
            gid = g.gid
        elif gid_n is not None:
            gid = gid_n
        else:
            raise ContainerError(
                f"unable to find group {group_arg}: no matching entries in group file"
            )
    elif name is not None:
        sgids = [g.gid for g in groups if name in g.members]

    for extra in group_add:
        n = _numeric(extra, "gid")
        if n is None:
            g = next((x for x in groups if x.name == extra), None)
            if g is None:
                raise ContainerError(
                    f"unable to find group {extra}: no matching entries in group file"
                )
            n = g.gid
        sgids.append(n)

    # The primary group leads the list (containerd's and moby's fix for CVE-2023-25173): a
    # process may never shed its primary group by calling setgroups.
    uniq: list[int] = []
    for one in (gid, *sgids):
        if one not in uniq:
            uniq.append(one)
    return ExecUser(uid=uid, gid=gid, additional_gids=tuple(uniq), home=home, name=name)
