"""``commit``: a new image from a container, its writable layer as the new top layer.

The layer is the container's overlay upper directory (``gantry.layers.create`` turns
whiteouts and opaque directories into OCI entries), minus what is not the user's change:
mount points runc created for a running container (``/etc/hostname``, ``-v`` targets)
and directories that were only copied up and are identical to the image's. The image
config is the image's, with the container's ``Config`` (Docker's commit does the same),
a history entry with the container's command, and the new diff ID.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantry.containers.inspect import go_time
from gantry.oci import Descriptor, Manifest, mediatypes

if TYPE_CHECKING:
    from gantry.containers.lifecycle import Containers

#: Keys of a container's Config that an image config carries.
IMAGE_CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout",
                     "AttachStderr", "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env",
                     "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
                     "Entrypoint", "OnBuild", "Labels", "StopSignal")  # fmt: skip


def _lower_stat(lowers: Sequence[Path], rel: str) -> os.stat_result | None:
    for low in lowers:
        p = low / rel
        try:
            return os.lstat(p)
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            return None
    return None


def changed_paths(
    upper: Path,
    lowers: Sequence[Path],
    mount_points: Sequence[str],
    stub_parents: Sequence[str] = (),
) -> set[str]:
    """Relative paths of ``upper`` that belong in the layer.

    ``mount_points``: paths the runtime may have created (left out when still empty and
    absent from the image); ``stub_parents``: directories it created them in (left out
    when nothing else in them changed).
    """
    stubs = {p.strip("/") for p in mount_points}
    parents = {p.strip("/") for p in stub_parents}
    keep: set[str] = set()

    def visit(rel: str) -> bool:
        host = upper / rel if rel else upper
        st = os.lstat(host)
        kept_child = False
        if stat.S_ISDIR(st.st_mode):
            for name in sorted(os.listdir(host)):
                child = f"{rel}/{name}" if rel else name
                if visit(child):
                    kept_child = True
        if not rel:
            return kept_child
        low = _lower_stat(lowers, rel)
        if rel in stubs and low is None:
            empty = (stat.S_ISREG(st.st_mode) and st.st_size == 0) or (
                stat.S_ISDIR(st.st_mode) and not kept_child
            )
            if empty:
                return False  # a mount point the runtime made
        if stat.S_ISDIR(st.st_mode) and not kept_child and rel in parents and not _opaque(host):
            return False  # copied up only because a mount point was made in it
        if stat.S_ISDIR(st.st_mode) and not kept_child and low is not None:
            same = (
                stat.S_ISDIR(low.st_mode)
                and stat.S_IMODE(low.st_mode) == stat.S_IMODE(st.st_mode)
                and (low.st_uid, low.st_gid) == (st.st_uid, st.st_gid)
                and low.st_mtime_ns // 1_000_000_000 == st.st_mtime_ns // 1_000_000_000
                and not _opaque(host)
            )
            if same:
                return False  # only copied up
        keep.add(rel)
        return True

    visit("")
    return keep


def _opaque(path: Path) -> bool:
    for attr in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, attr) == b"y":
                return True
        except OSError:
            continue
    return False


def commit(
    mgr: Containers,
    ref: str,
    *,
    repository: str | None = None,
    author: str = "",
    message: str = "",
    config: Mapping[str, Any] | None = None,
    pause: bool = True,
) -> str:
    """Make the image; returns its ID (``sha256:...``). ``config`` replaces the Config."""
    from gantry.layers.create import create

    c = mgr.get(ref)
    store = mgr.store
    cdir = mgr.container_dir(c.id)
    upper = cdir / "upper"
    lowers = list(store.lowerdirs(c.chain_id)) if c.chain_id else []
    mounts: list[str] = []
    bundle_cfg = cdir / "bundle" / "config.json"
    if bundle_cfg.exists():
        mounts = [
            str(m.get("destination", ""))
            for m in json.loads(bundle_cfg.read_text()).get("mounts", [])
        ]
    parents: list[str] = []
    stubs_file = cdir / "stubs.json"
    if stubs_file.exists():
        stubs = json.loads(stubs_file.read_text())
        mounts += [str(p) for p in stubs.get("missing", [])]
        parents = [str(p) for p in stubs.get("parents", [])]
    paused = False
    if pause and c.state == "running":
        paused = _runc(mgr, "pause", c.id)
    try:
        keep = changed_paths(upper, lowers, mounts, parents)
        with store.content.writer() as w:
            info = create(upper, w, overlay=True, filter=lambda rel: rel in keep)
    finally:
        if paused:
            _runc(mgr, "resume", c.id)
    raw = json.loads(store.config_bytes(c.image_id))
    now = time.time()
    new_cfg = {k: v for k, v in (config or c.config).items() if k in IMAGE_CONFIG_KEYS}
    raw["config"] = new_cfg
    raw["container"] = c.id
    raw["created"] = go_time(now)
    if author:
        raw["author"] = author
    cmd = " ".join(c.command)
    history = list(raw.get("history") or [])
    entry: dict[str, Any] = {"created": raw["created"], "created_by": cmd}
    if author:
        entry["author"] = author
    if message:
        entry["comment"] = message
    history.append(entry)
    raw["history"] = history
    rootfs = dict(raw.get("rootfs") or {"type": "layers", "diff_ids": []})
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), str(info.diff_id)]
    raw["rootfs"] = rootfs
    config_bytes = json.dumps(raw, separators=(",", ":"), sort_keys=True).encode()
    config_digest = store.content.write(config_bytes)
    old_manifest = store.manifest(c.image_id)
    manifest = Manifest(
        config=Descriptor(mediatypes.OCI_CONFIG, config_digest, len(config_bytes)),
        layers=(
            *old_manifest.layers,
            Descriptor(info.media_type, info.digest, info.size),
        ),
    )
    image = store.add_image(
        manifest.to_json(),
        tags=[repository] if repository else [],
        parent=c.image_id,
    )
    return str(image.id)


def _runc(mgr: Containers, verb: str, cid: str) -> bool:
    import subprocess

    rt = mgr.runtime
    p = subprocess.run([rt.path, "--root", str(rt.state_root), verb, cid],
                       capture_output=True, check=False)  # fmt: skip
    return p.returncode == 0
