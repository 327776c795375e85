"""``exec``: another process in a running container, through ``runc exec``.

The process starts from the container's own ``process`` object (its capabilities,
rlimits, seccomp and AppArmor settings stay) with the command, environment, working
directory, user and terminal replaced. ``runc exec`` runs in the foreground with our
stdio, so pipes work and ``-t`` gets a pty that runc copies to and from our terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gantry.containers.config import merge_env
from gantry.containers.state import RUNNING
from gantry.errors import Conflict, ContainerError, UsageError
from gantry.runtime import spec as ocispec
from gantry.runtime.users import resolve_user

if TYPE_CHECKING:
    from gantry.containers.lifecycle import Containers


def _runtime_message(log: str) -> str:
    msgs = []
    with contextlib.suppress(OSError), open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                    msgs.append(str(entry.get("msg", "")))
    return msgs[-1] if msgs else ""


def exec_process(
    mgr: Containers,
    ref: str,
    command: Sequence[str],
    *,
    user: str | None = None,
    workdir: str | None = None,
    env: Sequence[str] = (),
    tty: bool = False,
    interactive: bool = False,
    detach: bool = False,
    privileged: bool = False,
    capture: list[str] | None = None,
    timeout: float | None = None,
) -> int:
    """Run ``command`` in container ``ref``; its exit code (0 at once with ``detach``).

    With ``capture`` (a list) stdout and stderr are collected into it instead of shown,
    and a command running longer than ``timeout`` seconds gives -1 (health checks).
    """
    if not command:
        raise UsageError("exec requires at least 1 argument")
    c = mgr.get(ref)
    if c.state != RUNNING:
        raise Conflict(f"container {c.id} is not running")
    if workdir is not None and not workdir.startswith("/"):
        raise UsageError(
            f"the working directory '{workdir}' is invalid, it needs to be an absolute path"
        )
    cdir = mgr.container_dir(c.id)
    spec = json.loads((cdir / "bundle" / "config.json").read_text())
    process: dict[str, Any] = dict(spec["process"])
    merged = cdir / "merged"
    process["args"] = list(command)
    process["env"] = merge_env(list(process.get("env") or []), list(env))
    process["terminal"] = tty
    if workdir:
        process["cwd"] = workdir
    if user is not None:
        u = resolve_user(merged, user)
        process["user"] = {"uid": u.uid, "gid": u.gid, "additionalGids": list(u.additional_gids)}
        caps = process.get("capabilities") or {}
        bounding = list(caps.get("bounding") or [])
        process["capabilities"] = (
            {"bounding": bounding, "effective": bounding, "permitted": bounding}
            if u.uid == 0
            else {"bounding": bounding}
        )
        env_keys = {e.split("=", 1)[0] for e in process["env"]}
        if "HOME" not in env_keys or user:
            process["env"] = merge_env(process["env"], [f"HOME={u.home or '/'}"])
    if privileged:
        from gantry.containers.bundle import host_capabilities

        have = host_capabilities() or set(ocispec.ALL_CAPABILITIES)
        allcaps = [x for x in ocispec.ALL_CAPABILITIES if x in have]
        process["capabilities"] = {"bounding": allcaps, "effective": allcaps, "permitted": allcaps}
    rt = mgr.runtime
    rt.state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, pfile = tempfile.mkstemp(prefix="exec-", suffix=".json", dir=cdir)
    with os.fdopen(fd, "w") as f:
        json.dump(process, f)
    lfd, log = tempfile.mkstemp(prefix=".exec-log-", dir=rt.state_root)
    os.close(lfd)
    argv = [rt.path, "--root", str(rt.state_root), "--log", log, "--log-format", "json",
            "exec", "--process", pfile]  # fmt: skip
    if tty:
        argv.append("--tty")
    if detach:
        argv.append("--detach")
    argv.append(c.id)
    try:
        devnull = subprocess.DEVNULL
        if capture is not None:
            try:
                cp = subprocess.run(argv, stdin=devnull, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, timeout=timeout, check=False)  # fmt: skip
            except subprocess.TimeoutExpired as e:
                capture.append((e.stdout or b"").decode(errors="replace"))
                return -1
            capture.append(cp.stdout.decode(errors="replace"))
            return cp.returncode
        p = subprocess.run(
            argv,
            stdin=None if interactive and not detach else devnull,
            stdout=devnull if detach else None,
            stderr=devnull if detach else None,
            check=False,
        )
        msg = _runtime_message(log)
        if msg and p.returncode != 0 and ("exec failed" in msg or "unable to start" in msg):
            err = ContainerError(f"OCI runtime exec failed: {msg}")
            if "executable file not found" in msg or "no such file or directory" in msg:
                err.exit_code = 127
            elif "permission denied" in msg:
                err.exit_code = 126
            else:
                err.exit_code = 126
            raise err
        return p.returncode
    finally:
        os.unlink(pfile)
        os.unlink(log)
