"""gantry.runtime.users and .rootfs: --user resolution as Docker does it, and lookups that
never leave an untrusted rootfs (real files and symlinks in a tmp dir)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gantry.errors import ContainerError
from gantry.runtime.rootfs import open_in_root, read_file_in_root, resolve_in_root
from gantry.runtime.users import ExecUser, parse_group, parse_passwd, resolve_user

PASSWD = b"""root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
# a comment
broken line
www-data:x:33:33:www-data:/var/www:/bin/false
app:x:1000:1000:App:/home/app:/bin/sh
nohome:x:1001:1001
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = b"""root:x:0:
wheel:x:10:root,app
audio:x:29:app
www-data:x:33:
app:x:1000:
users:x:100:
nogroup:x:65534:
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_bytes(PASSWD)
    (r / "etc" / "group").write_bytes(GROUP)
    return r


def test_parse() -> None:
    users = parse_passwd(PASSWD)
    assert [u.name for u in users] == ["root", "daemon", "www-data", "app", "nohome", "nobody"]
    assert users[3].home == "/home/app" and users[4].home == ""
    groups = parse_group(GROUP)
    assert groups[1].members == ("root", "app")


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("", ExecUser(0, 0, (0, 10), "/root", "root")),
        ("root", ExecUser(0, 0, (0, 10), "/root", "root")),
        ("0", ExecUser(0, 0, (0, 10), "/root", "root")),
        ("app", ExecUser(1000, 1000, (1000, 10, 29), "/home/app", "app")),
        ("1000", ExecUser(1000, 1000, (1000, 10, 29), "/home/app", "app")),
        # An explicit group: no supplementary groups from /etc/group.
        ("app:users", ExecUser(1000, 100, (100,), "/home/app", "app")),
        ("app:29", ExecUser(1000, 29, (29,), "/home/app", "app")),
        ("www-data:4242", ExecUser(33, 4242, (4242,), "/var/www", "www-data")),
        ("1000:1000", ExecUser(1000, 1000, (1000,), "/home/app", "app")),
        # Numbers need no entry: gid 0 and home / then.
        ("4242", ExecUser(4242, 0, (0,), "/", None)),
        ("4242:4243", ExecUser(4242, 4243, (4243,), "/", None)),
        ("4242:wheel", ExecUser(4242, 10, (10,), "/", None)),
        ("nohome", ExecUser(1001, 1001, (1001,), "/", "nohome")),
    ],
)
def test_resolve(rootfs: Path, spec: str, want: ExecUser) -> None:
    assert resolve_user(rootfs, spec) == want


def test_group_add(rootfs: Path) -> None:
    u = resolve_user(rootfs, "www-data", group_add=["audio", "777", "33"])
    assert u.additional_gids == (33, 29, 777)
    with pytest.raises(ContainerError, match="unable to find group nosuch"):
        resolve_user(rootfs, "www-data", group_add=["nosuch"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch", "unable to find user nosuch: no matching entries in passwd file"),
        ("app:nosuch", "unable to find group nosuch: no matching entries in group file"),
        ("99999999999", "out of range"),
        ("app:", "empty group"),
        (":app", "empty user"),
    ],
)
def test_resolve_errors(rootfs: Path, spec: str, message: str) -> None:
    with pytest.raises(ContainerError, match=message):
        resolve_user(rootfs, spec)


def test_missing_files_mean_numeric_only(tmp_path: Path) -> None:
    empty = tmp_path / "scratch"
    empty.mkdir()
    assert resolve_user(empty, "") == ExecUser(0, 0, (0,), "/root", None)
    assert resolve_user(empty, "12:34") == ExecUser(12, 34, (34,), "/", None)
    with pytest.raises(ContainerError, match="unable to find user app"):
        resolve_user(empty, "app")


def test_explicit_file_contents() -> None:
    u = resolve_user(None, "app", passwd=PASSWD, group=GROUP)
    assert u.uid == 1000


# ----------------------------------------------------------------- hostile rootfs


def test_absolute_symlink_stays_inside(tmp_path: Path, rootfs: Path) -> None:
    # /etc/passwd -> /../../outside/passwd must resolve to rootfs/outside/passwd.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(b"evil:x:0:0::/:/bin/sh\n")
    os.unlink(rootfs / "etc" / "passwd")
    os.symlink("/../../outside/passwd", rootfs / "etc" / "passwd")
    assert read_file_in_root(rootfs, "/etc/passwd") is None
    with pytest.raises(ContainerError, match="unable to find user evil"):
        resolve_user(rootfs, "evil")
    # Once the target exists inside the rootfs, it is what is read.
    (rootfs / "outside").mkdir()
    (rootfs / "outside" / "passwd").write_bytes(b"inner:x:5:5::/in:/bin/sh\n")
    assert resolve_user(rootfs, "inner").home == "/in"


def test_relative_symlink_cannot_climb_out(tmp_path: Path, rootfs: Path) -> None:
    (tmp_path / "group").write_bytes(b"evil:x:7:\n")
    os.unlink(rootfs / "etc" / "group")
    os.symlink("../../../../group", rootfs / "etc" / "group")
    assert read_file_in_root(rootfs, "etc/group") is None
    # .. stops at the rootfs: ../../../../group is /group inside it.
    (rootfs / "group").write_bytes(b"inside:x:8:\n")
    assert read_file_in_root(rootfs, "/etc/group") == b"inside:x:8:\n"


def test_symlinked_directory_and_dotdot(tmp_path: Path, rootfs: Path) -> None:
    (rootfs / "real").mkdir()
    (rootfs / "real" / "f").write_text("x")
    os.symlink("/real", rootfs / "link")
    os.symlink(str(tmp_path), rootfs / "escape")  # an absolute host path, re-rooted
    assert read_file_in_root(rootfs, "/link/f") == b"x"
    assert read_file_in_root(rootfs, "/link/../link/./f") == b"x"
    assert read_file_in_root(rootfs, "/../../../link/f") == b"x"
    assert resolve_in_root(rootfs, "/link/f") == (rootfs / "real" / "f").resolve()
    assert read_file_in_root(rootfs, "/escape/rootfs/etc/passwd") is None


def test_loops_and_special_files(rootfs: Path) -> None:
    os.symlink("/b", rootfs / "a")
    os.symlink("/a", rootfs / "b")
    with pytest.raises(OSError):
        open_in_root(rootfs, "/a")
    os.mkfifo(rootfs / "fifo")
    with pytest.raises(ContainerError, match="not a regular file"):
        read_file_in_root(rootfs, "/fifo")  # would block forever if opened naively
    (rootfs / "big").write_bytes(b"x" * 100)
    with pytest.raises(ContainerError, match="too large"):
        read_file_in_root(rootfs, "/big", limit=10)
    assert read_file_in_root(rootfs, "/etc/passwd/x") is None  # through a file


def test_passwd_as_directory_is_refused(rootfs: Path) -> None:
    os.unlink(rootfs / "etc" / "passwd")
    (rootfs / "etc" / "passwd").mkdir()
    with pytest.raises(ContainerError, match="not a regular file"):
        resolve_user(rootfs, "root")
