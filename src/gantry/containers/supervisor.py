"""The per-container supervisor: gantry's conmon.

A detached container is watched by one small Python process, started by ``gantry start``
/ ``run -d`` and double-forked so that it outlives the CLI (its parent becomes init). It
makes itself a child subreaper, mounts the container's overlay, writes the bundle, runs
``runc create`` + ``runc start`` with the container's stdout/stderr on pipes it holds,
and then:

- copies the output into the json-file log (:mod:`gantry.containers.logs`);
- reaps the container's init (it is reparented to the supervisor when ``runc create``
  exits) and records the exit code (128+N for a signal), the time and an OOM kill;
- applies the restart policy (``no``, ``on-failure[:N]``, ``always``, ``unless-stopped``)
  with Docker's back-off (100 ms doubling to a minute, reset after 10 s of running),
  unless the user stopped the container;
- finally removes the runtime state, the mount stubs runc created, the overlay mount,
  and the container itself with ``--rm``.

The CLI learns whether the first start worked through a pipe (one JSON line). A
foreground ``gantry run`` runs the same :class:`Supervisor` in its own process, with the
output also copied to its terminal and signals forwarded to the container.

The CLI forks it (:func:`become_supervisor`); ``python -m gantry.containers.supervisor
ROOT ID SYNC_FD [--restarted]`` starts one by hand.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import selectors
import shutil
import signal
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from gantry.errors import ContainerError, GantryError, NotFound
from gantry.runtime.oci_runtime import Launched

PR_SET_CHILD_SUBREAPER = 36
BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
BACKOFF_RESET_AFTER = 10.0
#: How long output is still read after the container's init exited.
DRAIN_GRACE = 2.0

Tee = Callable[[str, bytes], None]


def set_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise ContainerError(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


def proc_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2 :].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def copy_winsize(src: int, dst: int) -> None:
    """Give the pty ``dst`` the window size of terminal ``src`` (when it is one)."""
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)


def _cgroup_file(cid: str, controller: str, name: str) -> Path | None:
    from gantry.containers.bundle import cgroups_path

    rel = cgroups_path(cid).lstrip("/")
    for base in (Path("/sys/fs/cgroup") / controller, Path("/sys/fs/cgroup")):
        p = base / rel / name
        if p.exists():
            return p
    return None


def oom_killed(cid: str) -> bool:
    """Whether the kernel's OOM killer hit a process of the container's memory cgroup."""
    for controller, name, key in (
        ("memory", "memory.oom_control", "oom_kill"),
        ("", "memory.events", "oom_kill"),
    ):
        p = _cgroup_file(cid, controller, name)
        if p is None:
            continue
        with contextlib.suppress(OSError, ValueError):
            for line in p.read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == key and int(v) > 0:
                    return True
    return False


class Supervisor:
    """Runs one container to completion (and through its restarts)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        container_id: str,
        *,
        stdin: int | None = None,
        tee: Tee | None = None,
        proxy_signals: bool = False,
        one_shot: bool = False,
        manager: Any = None,
    ) -> None:
        from gantry.containers.lifecycle import Containers

        # a foreground run shares its caller's Containers (its database and store already
        # open); a detached supervisor, forked, opens its own
        self.mgr = manager if manager is not None else Containers(root)
        self.id = container_id
        self.dir = self.mgr.container_dir(container_id)
        self.stdin = stdin
        self.tee = tee
        self.proxy_signals = proxy_signals
        self.one_shot = one_shot
        self._pid: int | None = None
        self._interrupts = 0
        self._stubs: list[str] = []
        self._stub_times: dict[str, tuple[int, int]] = {}
        self._tty = False
        self._master: int | None = None
        #: the foreground ``runc run`` of a one-shot container (see ``_direct``)
        self._launched: Launched | None = None
        #: stderr read before runc wrote the init's PID: runc's own error if it fails
        self._held: list[bytes] = []
        self._log: Any = None

    # ------------------------------------------------------------------ one run

    def _start_once(self) -> tuple[int, dict[int, str]]:
        from gantry.containers import bundle as bundle_mod
        from gantry.runtime.stubs import _parent_times, missing_paths, mount_destinations

        mgr = self.mgr
        c = mgr.record(self.id)
        if c is None:
            raise NotFound(f"No such container: {self.id}")
        merged = mgr.mount_rootfs(c)
        network, ip = mgr.network_setup(c)
        mounts = c.settings.get("Mounts") or []
        if any(m.get("_copy") for m in mounts):
            for m in mounts:
                if m.get("_copy"):
                    bundle_mod.copy_up(merged, m)
                    m["_copy"] = False
            mgr.store.update_container(self.id, settings=c.settings)
        init = bundle_mod.find_init() if c.host_config.get("Init") else None
        bdir = self.dir / "bundle"
        spec = bundle_mod.write_bundle(
            c, rootfs=merged, bundle=bdir, network=network, ip=ip, init_binary=init
        )
        if not self._stubs:
            self._stubs = missing_paths(merged, mount_destinations(spec))
            self._stub_times = _parent_times(merged, self._stubs)
            # for commit of a running container: what is the runtime's, not the user's
            stubs = {"missing": self._stubs, "parents": sorted(self._stub_times)}
            (self.dir / "stubs.json").write_text(json.dumps(stubs))
        rt = mgr.runtime
        pid_file = self.dir / "init.pid"
        pid_file.unlink(missing_ok=True)
        self._tty = bool(c.config.get("Tty"))
        if self._direct(c):
            return self._launch(bdir, pid_file)
        try:
            streams = self._create(bdir, pid_file)
        except ContainerError as err:
            if "already exists" not in str(err):
                raise
            # runtime state left by a supervisor that died: clear it and try once more
            with contextlib.suppress(GantryError):
                rt.delete(self.id, force=True)
            streams = self._create(bdir, pid_file)
        pid = int(pid_file.read_text().strip())
        self._pid = pid
        mgr.store.update_container(
            self.id, state="running", pid=pid, started=time.time(), oom_killed=0, error=""
        )
        return pid, streams

    def _direct(self, c: Any) -> bool:
        """Whether this run can be one ``runc run`` (create, start and delete in one exec).

        Only a foreground, one-shot run without a terminal, and without a memory limit:
        runc removes the container's cgroup as it exits, so an OOM kill could not be read
        from it afterwards.
        """
        hc = c.host_config
        return self.one_shot and not self._tty and not hc.get("Memory") and not hc.get("MemorySwap")

    def _launch(self, bdir: Path, pid_file: Path) -> tuple[int, dict[int, str]]:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin: Any = self.stdin if self.stdin is not None else os.open(os.devnull, os.O_RDONLY)
        try:
            launched = self.mgr.runtime.launch(
                bdir, self.id, pid_file=pid_file, stdin=stdin, stdout=out_w, stderr=err_w
            )
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
            if self.stdin is None:
                os.close(stdin)
        self._launched = launched
        # the init's PID is recorded once runc has written it (see _pump)
        self.mgr.store.update_container(
            self.id, state="running", pid=0, started=time.time(), oom_killed=0, error=""
        )
        return launched.pid, {out_r: "stdout", err_r: "stderr"}

    def _note_init_pid(self) -> None:
        """With ``runc run``: take the container's init PID from runc's pid file."""
        launched = self._launched
        if launched is None or self._pid is not None:
            return
        pid = launched.init_pid()
        if pid is not None:
            self._pid = pid
            self.mgr.store.update_container(self.id, pid=pid)
            if self._log is not None:
                self._release_held(self._log)

    def _create(self, bdir: Path, pid_file: Path) -> dict[int, str]:
        if self._tty:
            return {self._create_with_console(bdir, pid_file): "stdout"}
        return self._create_with_pipes(bdir, pid_file)

    def _create_with_pipes(self, bdir: Path, pid_file: Path) -> dict[int, str]:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin: Any = self.stdin if self.stdin is not None else os.open(os.devnull, os.O_RDONLY)
        try:
            self.mgr.runtime.create(
                bdir,
                self.id,
                pid_file=pid_file,
                stdin=stdin,
                stdout=out_w,
                stderr=err_w,
                start=True,  # runc run --detach: one exec, not create + start
            )
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
            if self.stdin is None:
                os.close(stdin)
        return {out_r: "stdout", err_r: "stderr"}

    def _create_with_console(self, bdir: Path, pid_file: Path) -> int:
        """``runc create --console-socket``: runc sends us the pty master it made."""
        import socket  # only ``-t`` needs it: not imported by every run

        sockdir = tempfile.mkdtemp(prefix="gantry-console-")
        path = os.path.join(sockdir, "console.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            srv.bind(path)
            srv.listen(1)
            self.mgr.runtime.create(
                bdir, self.id, pid_file=pid_file, console_socket=path, start=True
            )
            srv.settimeout(30)
            conn, _ = srv.accept()
            with conn:
                _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
        finally:
            srv.close()
            shutil.rmtree(sockdir, ignore_errors=True)
        if not fds:
            raise ContainerError("runc did not send the container's console")
        master = fds[0]
        self._master = master
        if self.stdin is not None:
            copy_winsize(self.stdin, master)
        return master

    def _pump(self, pid: int, streams: dict[int, str], log: Any) -> int:
        sel = selectors.DefaultSelector()
        for fd, name in streams.items():
            sel.register(fd, selectors.EVENT_READ, name)
        master = next(iter(streams)) if self._tty else None
        if master is not None and self.stdin is not None:
            sel.register(self.stdin, selectors.EVENT_READ, "stdin")
        pidfd = os.pidfd_open(pid)
        sel.register(pidfd, selectors.EVENT_READ, "exit")
        status: int | None = None
        exited_at = 0.0
        try:
            while True:
                open_streams = [k for k in sel.get_map().values() if k.data in ("stdout", "stderr")]
                if status is not None and (
                    not open_streams or time.monotonic() - exited_at > DRAIN_GRACE
                ):
                    break
                waiting_for_pid = self._launched is not None and self._pid is None
                for key, _ in sel.select(timeout=0.02 if waiting_for_pid else 0.5):
                    if key.data == "exit":
                        sel.unregister(pidfd)
                        try:
                            _, st = os.waitpid(pid, 0)
                            status = os.waitstatus_to_exitcode(st)
                        except ChildProcessError:
                            status = 255  # not our child after all: status unknown
                        exited_at = time.monotonic()
                        continue
                    fd = int(key.fd)
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:  # EIO: the pty's other side is gone
                        chunk = b""
                    if key.data == "stdin":
                        if not chunk:
                            sel.unregister(fd)
                        elif master is not None:
                            with contextlib.suppress(OSError):
                                os.write(master, chunk)
                        continue
                    if not chunk:
                        sel.unregister(fd)
                        if not (key.data == "stderr" and self._held):
                            log.flush(key.data)
                        continue
                    if key.data == "stderr" and self._launched is not None and self._pid is None:
                        self._held.append(chunk)  # runc's words, or the container's first
                        continue
                    self._output(log, str(key.data), chunk)
                self._note_init_pid()
                self._reap_others(pid)
        finally:
            sel.close()
            os.close(pidfd)
            for fd in streams:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._master = None
            log.flush()
        assert status is not None
        return 128 - status if status < 0 else status

    def _output(self, log: Any, stream: str, chunk: bytes) -> None:
        log.write(stream, chunk)
        if self.tee is not None:
            self.tee(stream, chunk)

    def _release_held(self, log: Any) -> None:
        """The container's own stderr, held back while runc could still fail, goes out."""
        held, self._held = self._held, []
        for chunk in held:
            self._output(log, "stderr", chunk)

    @staticmethod
    def _reap_others(pid: int) -> None:
        """Reap orphans reparented to us (never the container's init: it is waited on)."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == pid or info.si_pid == 0:
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, 0)

    # ------------------------------------------------------------------ signals

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGWINCH:
            if self._master is not None and self.stdin is not None:
                copy_winsize(self.stdin, self._master)
            return
        self._note_init_pid()
        pid = self._pid
        if pid is None and self._launched is not None:
            pid = self._launched.pid  # runc run forwards what it gets to the init
        if pid is None:
            return
        sig = signum
        if signum == signal.SIGINT:
            self._interrupts += 1
            if self._interrupts >= 3:
                sig = signal.SIGKILL  # a container that ignores Ctrl-C still stops
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    # ------------------------------------------------------------------ the loop

    def run(self, *, sync_fd: int | None = None, restarted: bool = False) -> int | None:
        """Run (and restart) the container; the last exit code, None if it never started."""
        from gantry.containers.logs import JsonLogWriter

        mgr = self.mgr
        mgr.store.update_container(
            self.id, supervisor_pid=os.getpid(), supervisor_start=proc_start_time(os.getpid()) or 0
        )
        old_handlers: dict[int, Any] = {}
        if self.proxy_signals:
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                      signal.SIGUSR2, signal.SIGWINCH):  # fmt: skip
                old_handlers[s] = signal.signal(s, self._forward)
        log = JsonLogWriter(mgr.log_path(self.id))
        self._log = log
        delay = BACKOFF_START
        code: int | None = None
        first = True
        try:
            if restarted and not self._backoff(delay):
                return None
            while True:
                try:
                    pid, streams = self._start_once()
                except GantryError as err:
                    exit_code = getattr(err, "exit_code", 125)
                    mgr.store.update_container(
                        self.id,
                        # as Docker: a container that never started stays "created"
                        state="created" if first else "exited",
                        finished=time.time(),
                        exit_code=exit_code if exit_code in (126, 127) else 128,
                        pid=0,
                        error=str(err),
                    )
                    if first and sync_fd is not None:
                        _report(sync_fd, {"ok": False, "error": str(err), "exit_code": exit_code})
                        sync_fd = None
                    if first and sync_fd is None and self.one_shot:
                        raise
                    break
                if first and sync_fd is not None:
                    _report(sync_fd, {"ok": True, "pid": pid})
                    sync_fd = None
                first = False
                started = time.monotonic()
                monitor = self._start_health()
                try:
                    code = self._pump(pid, streams, log)
                finally:
                    if monitor is not None:
                        monitor.stop()
                self._pid = None
                if self._launched is not None:
                    launched, self._launched = self._launched, None
                    failure = launched.finish(code)
                    if failure is None:
                        self._release_held(log)
                        log.flush("stderr")
                    else:  # runc could not start the command (its words held back): as above
                        self._held = []
                        mgr.store.update_container(
                            self.id,
                            state="created",
                            finished=time.time(),
                            exit_code=failure.exit_code if failure.exit_code in (126, 127) else 128,
                            pid=0,
                            error=str(failure),
                        )
                        raise failure
                    oom = False  # no memory limit (see _direct); runc deleted the container
                else:
                    oom = oom_killed(self.id)
                    with contextlib.suppress(GantryError):
                        mgr.runtime.delete(self.id, force=True)
                mgr.store.update_container(
                    self.id,
                    state="exited",
                    finished=time.time(),
                    exit_code=code,
                    pid=0,
                    oom_killed=int(oom),
                )
                if self.one_shot:
                    break
                c = mgr.record(self.id)
                if c is None or not should_restart(c, code):
                    break
                if time.monotonic() - started >= BACKOFF_RESET_AFTER:
                    delay = BACKOFF_START
                mgr.store.update_container(
                    self.id, state="restarting", restart_count=c.restart_count + 1
                )
                if not self._backoff(delay):
                    break
                delay = min(delay * 2, BACKOFF_MAX)
        finally:
            log.close()
            if sync_fd is not None:
                _report(sync_fd, {"ok": False, "error": "supervisor failed", "exit_code": 125})
            for signum, handler in old_handlers.items():
                signal.signal(signum, handler)
            self._cleanup()
        return code

    def _start_health(self) -> Any:
        c = self.mgr.record(self.id)
        hc = None if c is None else c.config.get("Healthcheck")
        if not hc:
            return None  # no HEALTHCHECK: the health module is not even imported
        from gantry.containers.health import HealthMonitor, test_command

        if not test_command(hc):
            return None
        assert hc is not None
        monitor = HealthMonitor(self.mgr.root, self.id, hc)
        monitor.start()
        return monitor

    def _backoff(self, delay: float) -> bool:
        """Sleep before a restart; False if the container was stopped or removed meanwhile."""
        deadline = time.monotonic() + delay
        while True:
            c = self.mgr.record(self.id)
            if c is None or c.stop_requested:
                if c is not None:
                    self.mgr.store.update_container(self.id, state="exited")
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, 0.05))

    def _cleanup(self) -> None:
        from gantry.runtime.stubs import remove_stubs, restore_times

        mgr = self.mgr
        merged = self.dir / "merged"
        c = mgr.record(self.id)
        # --rm: the writable layer is about to be deleted whole; tidying it is wasted work
        if self._stubs and not (c is not None and c.host_config.get("AutoRemove")):
            with contextlib.suppress(OSError, GantryError):
                remove_stubs(merged, self._stubs)
                restore_times(merged, self._stub_times)
            (self.dir / "stubs.json").unlink(missing_ok=True)
        if c is not None and c.state in ("running", "restarting"):
            # something went wrong between the checks above: never leave "running" behind
            mgr.store.update_container(self.id, state="exited", pid=0, finished=time.time())
        mgr.release_resources(self.id)
        if c is not None:
            mgr.store.update_container(self.id, supervisor_pid=0, supervisor_start=0)
            if c.host_config.get("AutoRemove") and not self.one_shot:
                with contextlib.suppress(GantryError):
                    mgr.remove(self.id, force=True, volumes=True)


def should_restart(c: Any, code: int) -> bool:
    """Docker's restart manager decision after an exit (``c`` is the fresh record)."""
    if c.stop_requested:
        return False
    name, retries = c.restart_policy
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        return code != 0 and (retries == 0 or c.restart_count < retries)
    return False


def _report(fd: int, msg: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (json.dumps(msg) + "\n").encode())
        os.close(fd)


PR_SET_NAME = 15
#: The supervisor's process name (``comm``; the kernel keeps 15 characters).
PROCESS_NAME = b"gantry-supervisor"


def become_supervisor(
    root: str | os.PathLike[str], cid: str, sync_fd: int, *, restarted: bool = False
) -> NoReturn:
    """In a freshly forked child: detach (setsid + fork), supervise ``cid``, exit.

    Called by the CLI right after ``fork()``: the interpreter and every module it
    imported come along, so the supervisor starts in a few milliseconds. The parent's
    database connection is inherited but never used here (the supervisor opens its own);
    the child always leaves with ``os._exit``.
    """
    code = 1
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        cdir = Path(root) / "containers" / cid
        devnull = os.open(os.devnull, os.O_RDWR)
        errlog = os.open(cdir / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(errlog, 2)
        os.close(devnull)
        os.close(errlog)
        os.chdir(cdir)  # /proc/PID/cwd tells which root and container this supervisor serves
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
            signal.signal(s, signal.SIG_DFL)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(PROCESS_NAME), 0, 0, 0)
        set_subreaper()
        Supervisor(root, cid).run(sync_fd=sync_fd, restarted=restarted)
        code = 0
    except BaseException as err:  # the record says what happened; stderr is our log file
        with contextlib.suppress(Exception):
            print(f"supervisor {cid[:12]}: {err!r}", file=sys.stderr, flush=True)
    os._exit(code)


def main(argv: list[str]) -> int:
    root, cid, sync = argv[0], argv[1], int(argv[2])
    restarted = "--restarted" in argv[3:]
    # second fork: the CLI reaps the first child at once; we are adopted by init
    if os.fork() != 0:
        os._exit(0)
    os.setsid()
    set_subreaper()
    try:
        Supervisor(root, cid).run(sync_fd=sync, restarted=restarted)
    except BaseException as err:  # the record says what happened; stderr is our log file
        print(f"supervisor {cid[:12]}: {err!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
