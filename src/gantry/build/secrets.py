"""Build secrets and SSH agent forwarding (``--secret``, ``--ssh``, ``RUN --mount=type=secret|ssh``).

A secret reaches one RUN only: as a read-only file bind-mounted from a private
directory in memory (``/dev/shm``), or as an environment variable of that RUN's
process. It is never written below the step's root, so never into a layer; it is not
in the history line, and the cache key holds the mount's shape (id, target, env name,
mode...) but never the value -- changing a secret's value does not re-run a step, as
in BuildKit.

Flags, as buildx parses them:

- ``--secret id=ID,src=PATH`` (``source=`` too), ``--secret id=ID,env=VAR``, an
  explicit ``type=file|env``; with neither ``src`` nor ``env`` the value comes from the
  environment variable named ID when it is set, else from the file named ID;
- ``--ssh ID`` (the agent at ``$SSH_AUTH_SOCK``), ``--ssh ID=SOCKET``.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from gantry.dockerfile.mounts import Mount
from gantry.errors import BuildError, UsageError

#: where ``type=ssh`` mounts go without a target (BuildKit's default, N counts from 0)
SSH_TARGET = "/run/buildkit/ssh_agent.{n}"


def parse_secret_flag(value: str, environ: Mapping[str, str]) -> tuple[str, bytes]:
    """One ``--secret`` value -> (id, the secret's bytes). Raises :class:`UsageError`."""
    fields: dict[str, str] = {}
    for item in value.split(","):
        key, eq, val = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise UsageError(f"invalid secret {value!r}: {item!r} is not key=value")
        if key == "source":
            key = "src"
        if key not in ("id", "src", "env", "type"):
            raise UsageError(f"unexpected key '{key}' in '{item}'")
        fields[key] = val
    kind = fields.get("type", "")
    if kind not in ("", "file", "env"):
        raise UsageError(f"unsupported secret type {kind!r}")
    sid = fields.get("id", "")
    src = fields.get("src", "")
    env = fields.get("env", "")
    if kind == "env" and not env:
        env, src = src or sid, ""
    if not sid:
        sid = env or (os.path.basename(src) if src else "")
    if not sid:
        raise UsageError(f"invalid secret {value!r}: id is required")
    if not src and not env:
        if sid in environ and kind != "file":
            env = sid
        else:
            src = sid
    if env:
        if env not in environ:
            raise UsageError(f"secret {sid}: environment variable {env} is not set")
        return sid, environ[env].encode()
    try:
        return sid, Path(src).read_bytes()
    except OSError as exc:
        raise UsageError(
            f"failed to read secret {sid}: open {src}: {exc.strerror or exc}"
        ) from None


def parse_ssh_flag(value: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """One ``--ssh`` value -> (id, agent socket path). Raises :class:`UsageError`."""
    sid, eq, path = value.partition("=")
    sid = sid.strip() or "default"
    if not eq:
        path = environ.get("SSH_AUTH_SOCK", "")
        if not path:
            raise UsageError(
                f"invalid empty ssh agent socket for {sid}: make sure SSH_AUTH_SOCK is set"
            )
    if "," in path:
        raise UsageError("forwarding several keys or sockets for one id is not supported")
    if not os.path.exists(path):
        raise UsageError(f"ssh agent socket for {sid}: {path}: no such file or directory")
    return sid, os.path.abspath(path)


def secret_id(m: Mount) -> str:
    """The secret a ``type=secret`` mount asks for (``id``, else the target's name)."""
    return m.cache_id or m.source or posixpath.basename((m.target or "").rstrip("/"))


def secret_target(m: Mount) -> str | None:
    """Where the secret file goes (None: env only); ``/run/secrets/<id>`` by default."""
    if m.target:
        return m.target
    if m.env:
        return None
    return "/run/secrets/" + posixpath.basename(secret_id(m))


def ssh_id(m: Mount) -> str:
    return m.cache_id or "default"


def missing_secret(sid: str) -> BuildError:
    return BuildError(f"secret {sid}: not found")


def missing_ssh(sid: str) -> BuildError:
    return BuildError(
        f'no SSH key "{sid}" forwarded from the client',
        hint=f"forward an agent with --ssh {sid} (uses $SSH_AUTH_SOCK) or --ssh {sid}=SOCKET",
    )


@contextlib.contextmanager
def private_dir() -> Iterator[Path]:
    """A 0700 directory in memory (``/dev/shm`` when there is one), removed afterwards."""
    import tempfile  # not at module level: the CLI imports this module on every build

    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    d = Path(tempfile.mkdtemp(prefix="gantry-secret-", dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def write_secret(directory: Path, name: str, data: bytes, m: Mount) -> Path:
    """The secret as a file with the mount's mode (0400) and owner (0:0)."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chown(path, m.uid or 0, m.gid or 0)
    os.chmod(path, 0o400 if m.mode is None else m.mode)
    return path
