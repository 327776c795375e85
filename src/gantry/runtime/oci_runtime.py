"""Drive an OCI runtime (runc, or crun where it works) over a bundle.

:func:`detect_runtime` finds a runtime that really starts containers on this host: it runs a
tiny probe container (the host's ``true`` over read-only binds of /usr and friends) with each
candidate, crun first, and remembers the answer per gantry root (in memory and in
``<root>/runtime/probe.json``, invalidated when the binaries change). ``GANTRY_RUNTIME`` (a
name or a path) skips the probe.

:meth:`OCIRuntime.run` is what a RUN step needs: one container in the foreground, its stdout
and stderr streamed to a callback or passed through, the exit code returned, the container
killed on timeout or Ctrl-C and always deleted afterwards. ``create``/``start``/``kill``/
``delete``/``state``/``list`` are thin wrappers for long-lived containers. Every call gives
the runtime its own JSON log file, so a failure is reported with the runtime's own words.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import shutil
import signal as _signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from gantry.config import default_root
from gantry.errors import ContainerError, NotFound

#: Candidates in order of preference; crun is faster but refuses hybrid cgroup hosts.
CANDIDATES = ("crun", "runc")
_SEARCH_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
PROBE_TIMEOUT = 30.0
KILL_GRACE = 10.0

OutputCallback = Callable[[str, bytes], None]
Stdio = int | IO[Any] | None


def new_container_id() -> str:
    """A fresh container id (64 hex digits, like Docker's)."""
    return os.urandom(32).hex()


@dataclass(frozen=True)
class ContainerState:
    """What ``runc state`` reports."""

    id: str
    status: str  # creating, created, running, stopped
    pid: int
    bundle: str
    created: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ContainerState:
        return cls(
            id=str(d.get("id", "")),
            status=str(d.get("status", "")),
            pid=int(d.get("pid") or 0),
            bundle=str(d.get("bundle", "")),
            created=str(d.get("created", "")),
            annotations=dict(d.get("annotations") or {}),
        )


def _runtime_error(log: Path, fallback: str) -> str:
    """The last error the runtime logged (runc/crun write JSON lines), else ``fallback``."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return fallback
    msgs = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            msgs.append(line)
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal", "panic"):
            msgs.append(str(entry.get("msg", "")))
    return msgs[-1] if msgs else fallback


def _exit_code_for(message: str) -> int:
    # Docker's codes when the command itself cannot be run.
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message:
        return 126
    return 125


def wait_child(proc: subprocess.Popen[Any], timeout: float | None) -> int:
    """``proc.wait(timeout)`` without polling: sleep on a pidfd until the child exits.

    ``Popen.wait`` with a timeout checks the child in a loop of growing sleeps (up to 50 ms
    each), which puts tens of milliseconds on every short runtime call.
    """
    if timeout is None:
        return proc.wait()
    if proc.returncode is not None:
        return proc.returncode
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:  # reaped already, or a kernel without pidfds
        return proc.wait(timeout)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def exit_error(name: str, what: str, message: str) -> ContainerError:
    """The error of a failed ``create``/``run``/``exec``, with Docker's exit code."""
    prefix = f"{name} {what} failed: "
    err = ContainerError(message if message.startswith(prefix) else prefix + message)
    err.exit_code = _exit_code_for(message)
    return err


@dataclass
class Launched:
    """A container run by ``runtime run`` in the foreground (:meth:`OCIRuntime.launch`).

    ``pid`` is the runtime's process (our child): it waits for the container, forwards the
    signals it gets to the container's init, and removes the container when it exits, with
    the container's exit code as its own (128+N for a signal). ``init_pid()`` reads the
    container's init from the pid file once the runtime has written it.
    """

    runtime: OCIRuntime
    container_id: str
    process: subprocess.Popen[bytes]
    log: Path
    pid_file: Path | None

    @property
    def pid(self) -> int:
        return self.process.pid

    def init_pid(self) -> int | None:
        if self.pid_file is None:
            return None
        try:
            return int(self.pid_file.read_text().strip() or "0") or None
        except (OSError, ValueError):
            return None

    def finish(self, returncode: int) -> ContainerError | None:
        """After the runtime exited with ``returncode``: the error if the runtime itself
        failed (the command was not found...), None if this is the container's exit code.
        The container's state is gone either way; the runtime's log is removed."""
        try:
            msg = _runtime_error(self.log, "") if returncode != 0 else ""
        finally:
            self.log.unlink(missing_ok=True)
        if msg:
            with contextlib.suppress(ContainerError, NotFound):
                self.runtime.delete(self.container_id, force=True)
            return exit_error(self.runtime.name, "run", msg)
        return None


@dataclass(frozen=True)
class OCIRuntime:
    """One runtime binary with its state directory (``--root``)."""

    name: str
    path: str
    state_root: Path

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _log(self) -> Iterator[Path]:
        self.state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".log-", suffix=".json", dir=self.state_root)
        os.close(fd)
        try:
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _argv(self, log: Path, *args: str) -> list[str]:
        return [
            self.path,
            "--root",
            str(self.state_root),
            "--log",
            str(log),
            "--log-format",
            "json",
            *args,
        ]

    def _call(self, *args: str, what: str, timeout: float = 60.0) -> str:
        with self._log() as log:
            try:
                p = subprocess.run(
                    self._argv(log, *args),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as e:
                raise ContainerError(f"{self.name} {what} timed out after {timeout:g}s") from e
            if p.returncode != 0:
                err = p.stderr.decode(errors="replace").strip()
                msg = _runtime_error(log, err or f"exit status {p.returncode}")
                if "does not exist" in msg or "container not found" in msg:
                    raise NotFound(f"No such container: {args[-1]}")
                raise ContainerError(f"{self.name} {what} failed: {msg}")
            return p.stdout.decode(errors="replace")

    # ------------------------------------------------------------------ foreground run

    def run(
        self,
        bundle: str | os.PathLike[str],
        container_id: str | None = None,
        *,
        on_output: OutputCallback | None = None,
        stdin: Stdio = subprocess.DEVNULL,
        stdout: Stdio = None,
        stderr: Stdio = None,
        timeout: float | None = None,
    ) -> int:
        """Run the bundle's process to completion; return its exit code (128+N if signalled).

        With ``on_output`` the container's stdout/stderr are read through pipes and handed
        over as ``on_output("stdout"|"stderr", chunk)`` from this thread; otherwise
        ``stdout``/``stderr`` are passed to the container as they are (None: ours).
        A container that outlives ``timeout`` seconds, or a KeyboardInterrupt, kills it.
        The container is deleted in every case. If the runtime itself fails (bad config,
        command not found) ``ContainerError`` carries its message and Docker's exit code.
        """
        cid = container_id or new_container_id()
        bundle_path = Path(bundle).absolute()
        with self._log() as log:
            argv = self._argv(log, "run", "--bundle", str(bundle_path), cid)
            piped = on_output is not None
            proc = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=subprocess.PIPE if piped else stdout,
                stderr=subprocess.PIPE if piped else stderr,
                start_new_session=True,  # Ctrl-C reaches us, and we stop the container
            )
            deadline = None if timeout is None else time.monotonic() + timeout
            try:
                if on_output is not None:
                    self._pump(proc, on_output, deadline)
                rc = wait_child(
                    proc, None if deadline is None else max(0.0, deadline - time.monotonic())
                )
            except subprocess.TimeoutExpired:
                self._stop(proc, cid)
                raise ContainerError(
                    f"container {cid[:12]} did not finish within {timeout:g}s and was killed"
                ) from None
            except BaseException:
                self._stop(proc, cid)
                raise
            finally:
                with contextlib.suppress(ContainerError, NotFound):
                    self.delete(cid, force=True)
            if rc != 0:
                msg = _runtime_error(log, "")
                if msg:
                    raise exit_error(self.name, "run", msg)
            return rc

    def _pump(
        self, proc: subprocess.Popen[bytes], on_output: OutputCallback, deadline: float | None
    ) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        sel = selectors.DefaultSelector()
        try:
            sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
            sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
            exited_at: float | None = None
            while sel.get_map():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise subprocess.TimeoutExpired(proc.args, 0)
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                # Once the runtime is gone, a leaked writer must not keep us here forever.
                if exited_at is not None and now - exited_at > 2.0:
                    break
                wait = 0.2 if deadline is None else min(0.2, deadline - now)
                for key, _ in sel.select(timeout=max(wait, 0.0)):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                    else:
                        on_output(str(key.data), chunk)
        finally:
            sel.close()
            for f in (proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    f.close()

    def _stop(self, proc: subprocess.Popen[bytes], cid: str) -> None:
        """Kill the container, then the runtime process if it still lingers."""
        with contextlib.suppress(ContainerError, NotFound):
            self.kill(cid, "KILL", all=True)
        try:
            proc.wait(KILL_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # ------------------------------------------------------------------ lifecycle

    def create(
        self,
        bundle: str | os.PathLike[str],
        container_id: str,
        *,
        pid_file: str | os.PathLike[str] | None = None,
        console_socket: str | os.PathLike[str] | None = None,
        stdin: Stdio = subprocess.DEVNULL,
        stdout: Stdio = subprocess.DEVNULL,
        stderr: Stdio = subprocess.DEVNULL,
        timeout: float = 60.0,
        start: bool = False,
    ) -> None:
        """``runtime create``: set the container up, its process waiting for ``start``.

        The container's stdio are ``stdin``/``stdout``/``stderr`` (files or fds, kept by the
        container after this returns), unless ``console_socket`` receives a pty master.
        ``start=True`` also starts it, in the same exec (``runtime run --detach``); the
        container's init is then the child of the nearest subreaper.
        """
        what = "run" if start else "create"
        args = ["run", "--detach"] if start else ["create"]
        args += ["--bundle", str(Path(bundle).absolute())]
        if pid_file is not None:
            args += ["--pid-file", os.fspath(pid_file)]
        if console_socket is not None:
            args += ["--console-socket", os.fspath(console_socket)]
        args.append(container_id)
        with self._log() as log:
            proc = subprocess.Popen(
                self._argv(log, *args), stdin=stdin, stdout=stdout, stderr=stderr
            )
            try:
                rc = wait_child(proc, timeout)
            except subprocess.TimeoutExpired as e:
                proc.kill()
                proc.wait()
                with contextlib.suppress(ContainerError, NotFound):
                    self.delete(container_id, force=True)
                raise ContainerError(f"{self.name} {what} timed out after {timeout:g}s") from e
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            if rc != 0:
                if start:  # a start that failed leaves a created container behind
                    with contextlib.suppress(ContainerError, NotFound):
                        self.delete(container_id, force=True)
                raise exit_error(self.name, what, _runtime_error(log, f"exit status {rc}"))

    def exec(
        self,
        container_id: str,
        process: Mapping[str, Any],
        *,
        detach: bool = False,
        stdin: Stdio = subprocess.DEVNULL,
        stdout: Stdio = None,
        stderr: Stdio = None,
        timeout: float | None = None,
    ) -> int:
        """``runtime exec``: run ``process`` (an OCI ``process`` object) in a running container.

        Returns its exit code (0 once it started, with ``detach``). ``process["terminal"]``
        asks runc for a pty that it copies to and from our own stdio. A process still
        running after ``timeout`` seconds is killed and ``subprocess.TimeoutExpired``
        raised. If the runtime cannot start the process, ``ContainerError`` carries its
        words and Docker's exit code (126, or 127 for a command that does not exist).
        """
        with self._log() as log:
            fd, pfile = tempfile.mkstemp(prefix=".exec-", suffix=".json", dir=self.state_root)
            with os.fdopen(fd, "w") as f:
                json.dump(dict(process), f)
            try:
                args = ["exec", "--process", pfile]
                if process.get("terminal"):
                    args.append("--tty")
                if detach:
                    args.append("--detach")
                proc = subprocess.Popen(
                    self._argv(log, *args, container_id), stdin=stdin, stdout=stdout, stderr=stderr
                )
                try:
                    rc = wait_child(proc, timeout)
                except BaseException:
                    proc.kill()
                    proc.wait()
                    raise
            finally:
                os.unlink(pfile)
            if rc != 0:
                msg = _runtime_error(log, "")
                if "exec failed" in msg or "unable to start" in msg:
                    err = ContainerError(f"OCI runtime exec failed: {msg}")
                    err.exit_code = 127 if _exit_code_for(msg) == 127 else 126
                    raise err
            return rc

    def launch(
        self,
        bundle: str | os.PathLike[str],
        container_id: str,
        *,
        pid_file: str | os.PathLike[str] | None = None,
        stdin: Stdio = subprocess.DEVNULL,
        stdout: Stdio = None,
        stderr: Stdio = None,
    ) -> Launched:
        """``runtime run`` without waiting: create, start and (at exit) delete in one exec.

        One process of the runtime instead of three (``create``, ``start``, ``delete``: about
        a third of a short container's time). The caller waits on ``Launched.pid``, a child of
        this process, and then calls ``Launched.finish``. The container's stdio are
        ``stdin``/``stdout``/``stderr`` as for :meth:`create` (no terminal).
        """
        self.state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".log-", suffix=".json", dir=self.state_root)
        os.close(fd)
        log = Path(tmp)
        args = ["run", "--bundle", str(Path(bundle).absolute())]
        if pid_file is not None:
            args += ["--pid-file", os.fspath(pid_file)]
        try:
            proc = subprocess.Popen(
                self._argv(log, *args, container_id),
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # a terminal's Ctrl-C is ours to forward, not runc's
            )
        except BaseException:
            log.unlink(missing_ok=True)
            raise
        return Launched(self, container_id, proc, log, None if pid_file is None else Path(pid_file))

    def start(self, container_id: str) -> None:
        """``runtime start``: run the process of a created container."""
        self._call("start", container_id, what="start")

    def kill(self, container_id: str, sig: str | int = "TERM", *, all: bool = False) -> None:
        """Send ``sig`` (name without SIG, or number) to the container's init (or every process)."""
        s = str(int(sig)) if isinstance(sig, int) else sig.upper().removeprefix("SIG")
        args = ["kill", *(["--all"] if all else []), container_id, s]
        try:
            self._call(*args, what="kill")
        except ContainerError:
            if not all:
                raise
            self._call("kill", container_id, s, what="kill")

    def delete(self, container_id: str, *, force: bool = False) -> None:
        """Remove the container's state (``force`` kills it first). Unknown ids: NotFound."""
        self._call("delete", *(["--force"] if force else []), container_id, what="delete")

    def state(self, container_id: str) -> ContainerState:
        """``runtime state``; NotFound for an unknown id."""
        out = self._call("state", container_id, what="state")
        try:
            return ContainerState.from_json(json.loads(out))
        except (ValueError, TypeError) as e:
            raise ContainerError(f"{self.name} state: unreadable answer: {out[:200]!r}") from e

    def list(self) -> list[ContainerState]:
        """Every container in this state root."""
        out = self._call("list", "--format", "json", what="list")
        data = json.loads(out or "null") or []
        return [ContainerState.from_json(d) for d in data]

    def version(self) -> str:
        """First line of ``runtime --version``."""
        p = subprocess.run([self.path, "--version"], capture_output=True, check=False)
        return p.stdout.decode(errors="replace").splitlines()[0] if p.stdout else ""


# ---------------------------------------------------------------------- detection


def find_binary(name: str) -> str | None:
    """``name`` on PATH or in the usual sbin/bin dirs (root's PATH is not always complete)."""
    found = shutil.which(name)
    if found:
        return found
    for d in _SEARCH_DIRS:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def _fingerprint(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def probe(name: str, path: str, state_root: Path) -> str | None:
    """Run a trivial container with this runtime; None if it worked, else why not."""
    from gantry.runtime.spec import SpecOptions, bind_mount, generate, write_config

    true = find_binary("true")
    if true is None:
        return "no `true` binary on the host to probe with"
    true = os.path.realpath(true)
    state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    work = Path(tempfile.mkdtemp(prefix="probe-", dir=state_root))
    try:
        rootfs = work / "rootfs"
        rootfs.mkdir()
        mounts = []
        for d in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(d):
                os.symlink(os.readlink(d), rootfs / d.lstrip("/"))
            elif os.path.isdir(d):
                mounts.append(bind_mount(d, d, readonly=True))
        spec = generate(
            SpecOptions(
                args=[true],
                rootfs=str(rootfs),
                readonly_rootfs=True,
                mounts=mounts,
                hostname="probe",
            )
        )
        write_config(work, spec)
        rt = OCIRuntime(name, path, state_root)
        try:
            rc = rt.run(
                work,
                "gantry-probe-" + os.urandom(6).hex(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=PROBE_TIMEOUT,
            )
        except ContainerError as e:
            return str(e)
        return None if rc == 0 else f"probe container exited with {rc}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


_CACHE: dict[Path, OCIRuntime] = {}
_CACHE_LOCK = threading.Lock()


def detect_runtime(
    root: str | os.PathLike[str] | None = None, *, candidates: Sequence[str] = CANDIDATES
) -> OCIRuntime:
    """The runtime to use under gantry root ``root`` (default: the configured root).

    Probes each candidate once per root and caches the winner (see the module docstring).
    Raises ``ContainerError`` listing why each candidate failed when none works.
    """
    r = Path(root) if root is not None else default_root()
    runtime_dir = r / "runtime"
    forced = os.environ.get("GANTRY_RUNTIME")
    if forced:
        path = forced if "/" in forced else find_binary(forced)
        if path is None or not os.access(path, os.X_OK):
            raise ContainerError(f"GANTRY_RUNTIME={forced}: runtime not found")
        name = os.path.basename(path)
        return OCIRuntime(name, path, runtime_dir / name)

    key = r.absolute()
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and os.access(cached.path, os.X_OK):
            return cached
        probe_file = runtime_dir / "probe.json"
        try:
            saved = json.loads(probe_file.read_text())
            if saved.get("fingerprint") == _fingerprint(saved["path"]) and list(
                saved.get("candidates", [])
            ) == list(candidates):
                rt = OCIRuntime(saved["name"], saved["path"], runtime_dir / saved["name"])
                _CACHE[key] = rt
                return rt
        except (OSError, ValueError, KeyError, TypeError):
            pass

        reasons = []
        for name in candidates:
            path = find_binary(name)
            if path is None:
                reasons.append(f"{name}: not installed")
                continue
            why = probe(name, path, runtime_dir / name)
            if why is not None:
                reasons.append(f"{name}: {why}")
                continue
            rt = OCIRuntime(name, path, runtime_dir / name)
            record = {
                "name": name,
                "path": path,
                "fingerprint": _fingerprint(path),
                "candidates": list(candidates),
                "rejected": reasons,
            }
            tmp = probe_file.with_name(f".probe-{os.getpid()}.json")
            tmp.write_text(json.dumps(record, indent=1))
            os.replace(tmp, probe_file)
            _CACHE[key] = rt
            return rt
        raise ContainerError(
            "no working OCI runtime found: " + "; ".join(reasons),
            hint="install runc (apt-get install runc)",
        )


def signal_number(sig: str | int) -> int:
    """``"TERM"``/``"SIGTERM"``/``"15"`` -> 15 (for callers mapping ``docker kill -s``)."""
    if isinstance(sig, int):
        return sig
    s = sig.strip().upper()
    if s.isdigit():
        return int(s)
    try:
        return int(_signal.Signals["SIG" + s.removeprefix("SIG")])
    except KeyError:
        raise ContainerError(f"invalid signal: {sig}") from None
