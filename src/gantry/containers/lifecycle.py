"""Container lifecycle over a gantry root: create, start, stop, kill, remove, wait, prune.

:class:`Containers` is the library API ``gantry run`` and friends call::

    from gantry.containers import Containers, CreateOptions

    with Containers(root) as ctrs:
        c = ctrs.create(CreateOptions(image="busybox", command=["echo", "hi"]))
        ctrs.start(c.id)               # a detached supervisor runs it
        code = ctrs.wait(c.id)
        ctrs.remove(c.id)

Per container: ``<root>/containers/<id>/`` holds ``upper``/``work`` (its writable layer),
``merged`` (the overlay while it runs), ``bundle`` (config.json, hosts, resolv.conf,
hostname), ``<id>-json.log`` and ``supervisor.log``.

The records are the store's (``Store.add_container``/``update_container``/
``remove_container``...): adding a container holds its image's snapshot chain as
``container:<id>`` in the same transaction, and removing it drops the rows and the hold
together, so no kill in between leaves one without the other.

State survives the CLI. Whenever a record says running or restarting, its supervisor is
checked (PID and start time); a record whose supervisor died with the container is
reconciled to ``exited`` with exit code 255 and the error "exit status unknown".
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from gantry.containers import names
from gantry.containers.bundle import public_mounts, resolve_mounts
from gantry.containers.config import CreateOptions, container_settings
from gantry.containers.state import (
    CREATED,
    DEAD,
    EXITED,
    PAUSED,
    REMOVING,
    RESTARTING,
    RUNNING,
    Container,
    from_record,
)
from gantry.containers.volumes import Volumes
from gantry.errors import Conflict, ContainerError, GantryError, NotFound, UsageError
from gantry.runtime.oci_runtime import OCIRuntime, detect_runtime, signal_number

if TYPE_CHECKING:
    from gantry.store import Store

DEFAULT_STOP_TIMEOUT = 10
#: How long to wait for a supervisor to record an exit after SIGKILL.
KILL_WAIT = 30.0
UNKNOWN_EXIT = 255
#: Network modes runc sets up alone (the network manager is not needed).
LOCAL_NETWORK_MODES = ("host", "none")


class Containers:
    """The containers of one gantry root (one instance per thread)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        from gantry.config import default_root

        self.root = Path(root) if root is not None else default_root()
        self.dir = self.root / "containers"
        self.volumes = Volumes(self.root)
        self._store: Store | None = None
        self._runtime: OCIRuntime | None = None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Containers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def store(self) -> Store:
        """The root's store, opened on first use (and again after a supervisor fork)."""
        if self._store is None:
            from gantry.store import Store

            self._store = Store(self.root)
        return self._store

    @property
    def runtime(self) -> OCIRuntime:
        if self._runtime is None:
            self._runtime = detect_runtime(self.root)
        return self._runtime

    def has_runtime_state(self, cid: str) -> bool:
        """Whether the OCI runtime still knows the container (its state directory exists)."""
        return (self.runtime.state_root / cid).exists()

    def container_dir(self, cid: str) -> Path:
        return self.dir / cid

    def log_path(self, cid: str) -> Path:
        return self.dir / cid / f"{cid}-json.log"

    # ------------------------------------------------------------------ lookup

    def get(self, ref: str) -> Container:
        """The container named or identified by ``ref`` (reconciled); NotFound otherwise."""
        return self.reconcile(from_record(self.store.find_container(ref)))

    def list(self, *, all: bool = True) -> list[Container]:
        """Newest first; without ``all`` only running (and paused/restarting) containers."""
        out = [self.reconcile(from_record(r)) for r in self.store.containers()]
        return out if all else [c for c in out if c.running]

    def record(self, cid: str) -> Container | None:
        """The record of the container with exactly this ID, as stored (not reconciled)."""
        rec = self.store.container(cid)
        return None if rec is None else from_record(rec)

    def supervisor_alive(self, c: Container) -> bool:
        if not c.supervisor_pid:
            return False
        from gantry.containers.supervisor import proc_start_time

        start = proc_start_time(c.supervisor_pid)
        return start is not None and (not c.supervisor_start or start == c.supervisor_start)

    def reconcile(self, c: Container) -> Container:
        """Fix a record whose supervisor is gone (killed, or the machine rebooted)."""
        if c.state not in (RUNNING, RESTARTING, PAUSED) or self.supervisor_alive(c):
            return c
        alive = False
        try:
            st = self.runtime.state(c.id)
            alive = st.status in ("running", "paused", "created", "creating")
        except (NotFound, ContainerError):
            alive = False
        if alive:
            return c  # the container outlived its supervisor: still running, unsupervised
        with contextlib.suppress(GantryError):
            self.runtime.delete(c.id, force=True)
        self.release_resources(c.id)
        self.store.update_container(
            c.id,
            state=EXITED,
            exit_code=UNKNOWN_EXIT,
            finished=time.time(),
            pid=0,
            supervisor_pid=0,
            error="exit status unknown: the container's supervisor died",
        )
        fresh = self.record(c.id)
        return fresh if fresh is not None else c

    # ------------------------------------------------------------------ create

    def create(self, opts: CreateOptions) -> Container:
        """Record a new container for ``opts.image`` (which must be in the store)."""
        store = self.store
        image = store.resolve(opts.image)
        raw = json.loads(store.config_bytes(image))
        img_cfg = raw.get("config") or {}
        cid = names.new_id()
        if opts.name is not None:
            if not names.valid_name(opts.name):
                raise UsageError(
                    f"Invalid container name ({opts.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                    "are allowed"
                )
            name = opts.name.lstrip("/")
        else:
            name = ""
            for attempt in range(50):
                name = names.random_name(attempt)
                if not self._name_taken(name):
                    break
        settings = container_settings(opts, img_cfg, container_id=cid)
        cdir = self.container_dir(cid)
        layers = store.layers(image)
        chain = str(layers[-1].chain_id) if layers else None
        added = False
        try:
            for sub in ("upper", "work", "merged", "bundle"):
                (cdir / sub).mkdir(parents=True, exist_ok=True)
            os.chmod(cdir, 0o710)
            settings["Mounts"] = resolve_mounts(
                self.volumes,
                settings["HostConfig"].get("Binds") or [],
                settings["HostConfig"].get("Mounts") or [],
                settings["Config"].get("Volumes"),
            )
            settings["Platform"] = raw.get("os") or "linux"
            settings["Driver"] = "overlay2"
            settings["LogPath"] = str(self.log_path(cid))
            settings["ImageID"] = str(image.id)
            # the rows and the hold on the image's layers in one transaction
            rec = store.add_container(
                cid,
                name=name,
                image_id=str(image.id),
                image_ref=opts.image,
                chain_id=chain,
                state=CREATED,
                labels=dict(settings["Config"].get("Labels") or {}),
                settings=settings,
            )
            added = True
            if chain is not None:
                store.lowerdirs(chain)  # unpack now (held), so that start is quick
        except BaseException:
            if added:
                with contextlib.suppress(GantryError):
                    store.remove_container(cid)
            shutil.rmtree(cdir, ignore_errors=True)
            raise
        return from_record(rec)

    def _name_taken(self, name: str) -> bool:
        try:
            return self.store.find_container(name).name == name
        except NotFound:
            return False

    # ------------------------------------------------------------------ rootfs, network

    def mount_rootfs(self, c: Container) -> Path:
        """Mount the container's overlay at ``<dir>/merged`` (if not mounted); return it."""
        from gantry.runtime.overlay import is_mountpoint, mount_overlay

        cdir = self.container_dir(c.id)
        merged = cdir / "merged"
        merged.mkdir(parents=True, exist_ok=True)
        if is_mountpoint(merged):
            return merged
        if c.chain_id is not None:
            lowers: list[Path] = list(self.store.lowerdirs(c.chain_id))
        else:
            empty = cdir / "empty"
            empty.mkdir(exist_ok=True)
            lowers = [empty]
        work = cdir / "work"
        work.mkdir(exist_ok=True)
        mount_overlay(merged, lowers, cdir / "upper", work)
        return merged

    def unmount_rootfs(self, cid: str) -> None:
        from gantry.runtime.overlay import is_mountpoint, unmount

        merged = self.container_dir(cid) / "merged"
        if merged.exists() and is_mountpoint(merged):
            unmount(merged)

    def network_setup(self, c: Container) -> tuple[str, str | None]:
        """Set up the container's network (:mod:`gantry.runtime.net.manager`).

        Returns the spec's network (``host`` or a namespace path) and the container's IP;
        the addresses and published ports are recorded for ``inspect`` and ``ps``.
        """
        mode = str(c.host_config.get("NetworkMode") or "bridge")
        if mode == "default":
            mode = "bridge"
        if mode in LOCAL_NETWORK_MODES:
            # runc makes these itself (no namespace, or a fresh one with lo up): no netlink
            return mode, None
        from gantry.runtime.net import manager, ports

        if mode.startswith("container:"):
            other = self.get(mode.partition(":")[2])
            if other.state != RUNNING:
                raise ContainerError(
                    f"cannot join network namespace of a non running container: {other.id}"
                )
            mode = f"container:{other.id}"
        mappings = ports.from_port_bindings(c.host_config.get("PortBindings") or {})
        if c.host_config.get("PublishAllPorts"):
            mappings += ports.publish_exposed(c.config.get("ExposedPorts") or {}, mappings)
        info = manager.setup(c.id, mode=mode, ports=mappings, root=self.root)
        c.settings["Network"] = {
            "IPAddress": info.ip or "",
            "IPPrefixLen": info.prefixlen or 0,
            "Gateway": info.gateway or "",
            "MacAddress": info.mac or "",
            "SandboxKey": info.netns_path or "",
            "Bridge": info.bridge or "",
        }
        c.settings["NetworkPorts"] = info.ports_map()
        self.store.update_container(c.id, settings=c.settings)
        return info.spec_network, info.ip

    def network_teardown(self, cid: str) -> None:
        c = self.record(cid)
        if c is not None and str(c.host_config.get("NetworkMode")) in LOCAL_NETWORK_MODES:
            return
        if not (self.root / "network").exists():
            return  # no container of this root ever had a managed network
        from gantry.runtime.net import manager

        with contextlib.suppress(GantryError, OSError):
            manager.teardown(cid, root=self.root)

    def release_resources(self, cid: str) -> None:
        """After the container's process is gone: network, then the overlay mount."""
        self.network_teardown(cid)
        with contextlib.suppress(GantryError):
            self.unmount_rootfs(cid)

    # ------------------------------------------------------------------ start / run

    def start(self, ref: str) -> Container:
        """Start a created or stopped container under a detached supervisor."""
        c = self.get(ref)
        if c.state in (RUNNING, RESTARTING):
            return c
        if c.state == PAUSED:
            raise Conflict("cannot start a paused container, try unpause instead")
        if c.state in (REMOVING, DEAD):
            raise ContainerError("container is marked for removal and cannot be started")
        self.store.update_container(c.id, stop_requested=0, restart_count=0)
        self.spawn_supervisor(c.id)
        return self.get(c.id)

    def spawn_supervisor(self, cid: str, *, restarted: bool = False) -> None:
        """Start the supervisor of ``cid`` and wait until the container runs (or failed).

        The supervisor is forked from this process (no new interpreter to start, nothing
        to import again), forks once more so that init adopts it, and tells us through a
        pipe how the first start went.
        """
        from gantry.containers.supervisor import become_supervisor

        cdir = self.container_dir(cid)
        r, w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        # SQLite connections must not cross a fork (its lock bookkeeping is per process):
        # close the store's, the child opens its own, ours reopens on next use.
        if self._store is not None:
            self._store.close()
            self._store = None
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(r)
            become_supervisor(self.root, cid, w, restarted=restarted)  # never returns
        os.close(w)
        os.waitpid(pid, 0)
        with os.fdopen(r, "rb") as f:
            line = f.readline()
        if restarted:
            return
        try:
            msg = json.loads(line) if line else {"ok": False, "error": "supervisor exited"}
        except ValueError:
            msg = {"ok": False, "error": line.decode(errors="replace")}
        if not msg.get("ok"):
            err = ContainerError(str(msg.get("error") or "failed to start container"))
            err.exit_code = int(str(msg.get("exit_code") or 125))
            if "supervisor" in str(msg.get("error")):
                tail = (cdir / "supervisor.log").read_text(errors="replace").strip()
                if tail:
                    err = ContainerError(f"{err}: {tail.splitlines()[-1]}")
            raise err

    def run_attached(
        self,
        ref: str,
        *,
        stdin: int | None = None,
        tee: Any = None,
        proxy_signals: bool = True,
    ) -> int:
        """Start ``ref`` in this process, its output also given to ``tee(stream, bytes)``.

        Returns the exit code. Runtime failures (command not found...) raise
        ``ContainerError`` with Docker's exit code (125, 126, 127). A restart policy that
        asks for a restart hands the container to a detached supervisor.
        """
        from gantry.containers.supervisor import Supervisor, set_subreaper, should_restart

        c = self.get(ref)
        if c.state in (RUNNING, RESTARTING):
            raise Conflict(f"container {c.id} is already running")
        self.store.update_container(c.id, stop_requested=0, restart_count=0)
        set_subreaper()
        sup = Supervisor(
            self.root,
            c.id,
            stdin=stdin,
            tee=tee,
            proxy_signals=proxy_signals,
            one_shot=True,
            manager=self,
        )
        code = sup.run()
        assert code is not None
        fresh = self.record(c.id)
        restart = fresh is not None and not fresh.host_config.get("AutoRemove")
        if fresh is not None and restart and should_restart(fresh, code):
            self.store.update_container(
                c.id, state=RESTARTING, restart_count=fresh.restart_count + 1
            )
            self.spawn_supervisor(c.id, restarted=True)
        return code

    # ------------------------------------------------------------------ stop / kill

    def _wait_state(self, cid: str, timeout: float | None, done: Sequence[str]) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            c = self.record(cid)
            if c is None:
                return True
            c = self.reconcile(c)
            if c.state in done:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def stop(self, ref: str, *, timeout: int | None = None, signal: str | None = None) -> Container:
        """Docker's stop: the stop signal, ``timeout`` seconds, then SIGKILL."""
        c = self.get(ref)
        self.store.update_container(c.id, stop_requested=1)
        if not c.running:
            return c
        if c.state == RESTARTING:
            self._wait_state(c.id, KILL_WAIT, (EXITED, CREATED, DEAD))
            return self.get(c.id)
        sig = signal or str(c.config.get("StopSignal") or "SIGTERM")
        if timeout is None:
            st = c.config.get("StopTimeout")
            timeout = int(st) if st is not None else DEFAULT_STOP_TIMEOUT
        with contextlib.suppress(GantryError):
            self.runtime.kill(c.id, str(signal_number(sig)))
        if timeout < 0:
            self._wait_state(c.id, None, (EXITED, CREATED, DEAD))
        elif not self._wait_state(c.id, timeout, (EXITED, CREATED, DEAD)):
            with contextlib.suppress(GantryError):
                self.runtime.kill(c.id, "KILL", all=True)
            if not self._wait_state(c.id, KILL_WAIT, (EXITED, CREATED, DEAD)):
                raise ContainerError(
                    f"cannot stop container: {c.id}: it did not exit after SIGKILL"
                )
        return self.get(c.id)

    def kill(self, ref: str, signal: str = "KILL") -> Container:
        """Send ``signal`` to the container's init (Docker's ``kill -s``)."""
        c = self.get(ref)
        num = signal_number(signal)
        if c.state != RUNNING:
            raise Conflict(f"Cannot kill container: {ref}: container {c.id} is not running")
        stop_sig = signal_number(str(c.config.get("StopSignal") or "SIGTERM"))
        if num in (9, stop_sig):
            self.store.update_container(c.id, stop_requested=1)
        try:
            self.runtime.kill(c.id, str(num))
        except NotFound:
            raise Conflict(
                f"Cannot kill container: {ref}: container {c.id} is not running"
            ) from None
        if num == 9:
            self._wait_state(c.id, KILL_WAIT, (EXITED, CREATED, DEAD, RESTARTING))
        return self.get(c.id)

    def restart(
        self, ref: str, *, timeout: int | None = None, signal: str | None = None
    ) -> Container:
        c = self.stop(ref, timeout=timeout, signal=signal)
        return self.start(c.id)

    # ------------------------------------------------------------------ wait

    def wait(self, ref: str, condition: str = "not-running") -> int:
        """Block until the container stops; its exit code (Docker's ``wait``)."""
        c = self.get(ref)
        if condition == "next-exit":
            started = c.started
            while True:
                cur = self.record(c.id)
                if cur is None:
                    return c.exit_code or 0
                cur = self.reconcile(cur)
                if (
                    cur.state in (EXITED, DEAD, CREATED)
                    and cur.started == started
                    and not c.running
                ):
                    pass
                if (
                    cur.finished is not None
                    and cur.state != RUNNING
                    and (c.finished is None or cur.finished > c.finished)
                ):
                    return cur.exit_code or 0
                time.sleep(0.02)
        while True:
            cur = self.record(c.id)
            if cur is None:
                if condition == "removed":
                    return c.exit_code or 0
                raise NotFound(f"No such container: {ref}")
            cur = self.reconcile(cur)
            if condition != "removed" and cur.state in (EXITED, CREATED, DEAD):
                return cur.exit_code or 0
            c = cur
            time.sleep(0.02)

    # ------------------------------------------------------------------ remove / prune

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> Container:
        """Docker's ``rm``: refuses a running container unless ``force`` (then kills it)."""
        c = self.get(ref)
        if c.running:
            if not force:
                raise Conflict(
                    f'cannot remove container "/{c.name}": container is {c.state}: stop the '
                    "container before removing or force remove"
                )
            self.store.update_container(c.id, stop_requested=1)
            with contextlib.suppress(GantryError):
                self.runtime.kill(c.id, "KILL", all=True)
            self._wait_state(c.id, KILL_WAIT, (EXITED, CREATED, DEAD))
        # not forced: only if nobody started it since we looked (checked under the write lock)
        stopped = None if force else (CREATED, EXITED, DEAD, REMOVING)
        if not self.store.update_container(c.id, expect=stopped, state=REMOVING):
            cur = self.record(c.id)
            if cur is None:
                raise NotFound(f"No such container: {ref}")
            raise Conflict(
                f'cannot remove container "/{c.name}": container is {cur.state}: stop the '
                "container before removing or force remove"
            )
        if self.has_runtime_state(c.id):
            with contextlib.suppress(GantryError):
                self.runtime.delete(c.id, force=True)
        self.release_resources(c.id)
        cdir = self.container_dir(c.id)
        from gantry.runtime.overlay import is_mountpoint

        if (cdir / "merged").exists() and is_mountpoint(cdir / "merged"):
            self.store.update_container(c.id, state=DEAD)
            raise ContainerError(f"cannot remove container {c.id}: its root filesystem is busy")
        self.store.remove_container(c.id)  # the rows and the hold on its layers together
        shutil.rmtree(cdir, ignore_errors=True)
        if volumes:
            for m in c.settings.get("Mounts") or []:
                if m.get("Type") == "volume" and m.get("_anonymous"):
                    with contextlib.suppress(GantryError):
                        self.volumes.remove(str(m["Name"]), in_use_by=self.volume_users(m["Name"]))
        return c

    def volume_users(self, name: str) -> builtins.list[str]:
        """IDs of the containers whose mounts name volume ``name``."""
        out = []
        for c in self.store.containers():
            for m in c.settings.get("Mounts") or []:
                if m.get("Type") == "volume" and m.get("Name") == name:
                    out.append(c.id)
                    break
        return out

    def prune(
        self, filters: Mapping[str, Iterable[str]] | None = None
    ) -> tuple[builtins.list[str], int]:
        """Remove every stopped container (``until``, ``label``, ``label!`` filters)."""
        from gantry.containers.filters import match_prune

        removed: builtins.list[str] = []
        reclaimed = 0
        for c in self.list(all=True):
            if c.running or not match_prune(c, filters or {}):
                continue
            size = self.size_rw(c.id)
            try:
                self.remove(c.id)
            except GantryError:
                continue
            removed.append(c.id)
            reclaimed += size
        return removed, reclaimed

    def size_rw(self, cid: str) -> int:
        """Bytes in the container's writable layer (``SizeRw``)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self.container_dir(cid) / "upper"):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, f)).st_size
        return total

    def inspect(self, ref: str, *, size: bool = False) -> dict[str, Any]:
        from gantry.containers.inspect import inspect_document

        return inspect_document(self, self.get(ref), size=size)


__all__ = ["Containers", "CreateOptions", "public_mounts"]
