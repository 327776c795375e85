"""``exec``: another process in a running container (:meth:`OCIRuntime.exec`).

The process starts from the container's own ``process`` object (its capabilities,
rlimits, seccomp and AppArmor settings stay) with the command, environment, working
directory, user and terminal replaced. ``runc exec`` runs in the foreground with our
stdio, so pipes work and ``-t`` gets a pty that runc copies to and from our terminal.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gantry.containers.config import merge_env
from gantry.containers.state import RUNNING
from gantry.errors import Conflict, UsageError
from gantry.runtime import spec as ocispec
from gantry.runtime.users import resolve_user

if TYPE_CHECKING:
    from gantry.containers.lifecycle import Containers


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
        allcaps = ocispec.capabilities(privileged=True)
        process["capabilities"] = {"bounding": allcaps, "effective": allcaps, "permitted": allcaps}
    rt = mgr.runtime
    devnull = subprocess.DEVNULL
    if capture is not None:
        with tempfile.TemporaryFile(dir=mgr.container_dir(c.id)) as out:
            try:
                code = rt.exec(c.id, process, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
            except subprocess.TimeoutExpired:
                code = -1
            out.seek(0)
            capture.append(out.read().decode(errors="replace"))
        return code
    return rt.exec(
        c.id,
        process,
        detach=detach,
        stdin=None if interactive and not detach else devnull,
        stdout=devnull if detach else None,
        stderr=devnull if detach else None,
    )
