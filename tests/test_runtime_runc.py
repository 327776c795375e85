"""gantry.runtime end to end: busybox rootfs under an overlay, containers run by real runc.

Needs root. The busybox rootfs is built as the brief says (copy /bin/busybox, then
``busybox --install -s`` inside a chroot). Every container is deleted and every mount
removed in finally blocks; the module fixture fails if a mount or container is left.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import need
from gantry.errors import ContainerError, NotFound
from gantry.runtime import oci_runtime
from gantry.runtime import overlay as ov
from gantry.runtime.oci_runtime import OCIRuntime, detect_runtime, new_container_id
from gantry.runtime.run import run_container
from gantry.runtime.seccomp import default_profile
from gantry.runtime.spec import (
    DEFAULT_CAPABILITIES,
    Rlimit,
    SpecOptions,
    capped_rlimits,
    generate,
    write_config,
)
from gantry.runtime.users import resolve_user

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.peers]

if os.geteuid() != 0:
    pytest.fail("runtime tests need root (mounts, namespaces)", pytrace=False)

PASSWD = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\n"
GROUP = "root:x:0:\nwheel:x:10:root\nwww-data:x:33:\nweb:x:500:www-data\n"


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    need("runc")
    d = Path(tempfile.mkdtemp(prefix="gantry-rt-", dir="/dev/shm"))
    try:
        yield d
    finally:
        leftovers = []
        state = d / "root" / "runtime" / "runc"
        if state.is_dir():
            p = subprocess.run(
                ["runc", "--root", str(state), "list", "-q"], capture_output=True, text=True
            )
            for cid in p.stdout.split():
                leftovers.append(f"container {cid}")
                subprocess.run(["runc", "--root", str(state), "delete", "-f", cid])
        for m in reversed([m for m in ov.mountpoints() if m.startswith(str(d))]):
            leftovers.append(f"mount {m}")
            ov.unmount(m, lazy=True)
        shutil.rmtree(d, ignore_errors=True)
        assert leftovers == [], f"left behind: {leftovers}"


@pytest.fixture(scope="module")
def busybox(base: Path) -> Path:
    """A busybox rootfs: /bin/busybox, its applet links, /etc/passwd+group, /tmp. No /proc,
    /dev or /sys: runc has to create those mount points (stubs)."""
    r = base / "busybox"
    (r / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", r / "bin" / "busybox")
    subprocess.run(["chroot", str(r), "/bin/busybox", "--install", "-s"], check=True)
    (r / "etc").mkdir()
    (r / "etc" / "passwd").write_text(PASSWD)
    (r / "etc" / "group").write_text(GROUP)
    (r / "tmp").mkdir(mode=0o1777)
    (r / "var" / "www").mkdir(parents=True)
    return r


@pytest.fixture(scope="module")
def runtime(base: Path) -> OCIRuntime:
    return detect_runtime(base / "root")


@pytest.fixture
def layer(base: Path, busybox: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, Path]]:
    """(merged rootfs, upper dir): an overlay with busybox as the only lower."""
    name: str = request.node.name
    d = base / name.replace("[", "_").replace("]", "")
    up, wk, mnt = d / "upper", d / "work", d / "merged"
    for p in (up, wk, mnt):
        p.mkdir(parents=True)
    with ov.overlay(mnt, [busybox], up, wk):
        yield mnt, up


def assert_only_changes(upper: Path, lower: Path, names: set[str]) -> None:
    """The upper dir holds ``names`` and, at most, directories copied up unchanged (the parents
    of removed mount stubs: same mode, owner and mtime as in the lower layer)."""
    extra = set(os.listdir(upper)) - names
    assert names <= set(os.listdir(upper))
    for name in extra:
        up, lo = os.lstat(upper / name), os.lstat(lower / name)
        assert os.path.isdir(upper / name) and os.listdir(upper / name) == [], name
        assert (up.st_mode, up.st_uid, up.st_gid, up.st_mtime_ns) == (
            lo.st_mode,
            lo.st_uid,
            lo.st_gid,
            lo.st_mtime_ns,
        ), name


def _run(rt: OCIRuntime, rootfs: Path, script: str, **kw: object) -> tuple[int, str, str]:
    out: list[bytes] = []
    err: list[bytes] = []

    def sink(stream: str, chunk: bytes) -> None:
        (out if stream == "stdout" else err).append(chunk)

    opts = SpecOptions(args=["/bin/sh", "-c", script], **kw)  # type: ignore[arg-type]
    rc = run_container(rootfs, opts, runtime=rt, on_output=sink, timeout=60)
    return rc, b"".join(out).decode(), b"".join(err).decode()


def test_detects_runc_and_caches_the_probe(base: Path, runtime: OCIRuntime) -> None:
    assert runtime.name in ("runc", "crun")
    record = json.loads((base / "root" / "runtime" / "probe.json").read_text())
    assert record["name"] == runtime.name and record["path"] == runtime.path
    if shutil.which("crun"):
        # crun is installed here but refuses hybrid cgroups: the probe must have seen that.
        assert runtime.name == "runc" and any(r.startswith("crun:") for r in record["rejected"])
    mtime = (base / "root" / "runtime" / "probe.json").stat().st_mtime_ns
    assert detect_runtime(base / "root") is runtime  # in-process cache
    oci_runtime._CACHE.clear()
    again = detect_runtime(base / "root")  # from probe.json, without probing again
    assert again == runtime
    assert (base / "root" / "runtime" / "probe.json").stat().st_mtime_ns == mtime


def test_runtime_override(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANTRY_RUNTIME", "runc")
    rt = detect_runtime(base / "other-root")
    assert rt.name == "runc" and not (base / "other-root" / "runtime" / "probe.json").exists()
    monkeypatch.setenv("GANTRY_RUNTIME", "/nonexistent/runtime")
    with pytest.raises(ContainerError, match="runtime not found"):
        detect_runtime(base / "other-root")


def test_failed_probe_is_reported(base: Path) -> None:
    # `false` is a runtime that cannot run anything: detection must say why it was refused.
    with pytest.raises(ContainerError, match="no working OCI runtime found: false: "):
        detect_runtime(base / "false-root", candidates=["false"])
    with pytest.raises(ContainerError, match="nosuchruntime: not installed"):
        detect_runtime(base / "false-root", candidates=["nosuchruntime"])


def test_run_writes_to_upper_with_env_and_cwd(
    runtime: OCIRuntime, layer: tuple[Path, Path], busybox: Path
) -> None:
    rootfs, upper = layer
    rc, out, err = _run(
        runtime,
        rootfs,
        "echo hi > /f; id; pwd; echo FOO=$FOO HOME=$HOME; echo to-stderr >&2",
        env=["FOO=bar baz"],
        cwd="/tmp",
        user=resolve_user(rootfs, ""),
    )
    assert rc == 0, err
    assert out.splitlines() == [
        "uid=0(root) gid=0(root) groups=0(root),10(wheel)",
        "/tmp",
        "FOO=bar baz HOME=/root",
    ]
    assert err == "to-stderr\n"
    assert (upper / "f").read_text() == "hi\n"
    # Only the step's change: no /proc, /dev, /sys, /etc/hostname... stubs from runc.
    assert_only_changes(upper, busybox, {"f"})


def test_user_from_passwd(runtime: OCIRuntime, layer: tuple[Path, Path], busybox: Path) -> None:
    rootfs, upper = layer
    user = resolve_user(rootfs, "www-data")
    assert (user.uid, user.gid, user.additional_gids) == (33, 33, (33, 500))
    rc, out, err = _run(
        runtime, rootfs, "id -u; id -g; id -G; echo $HOME; touch /nope", user=user, cwd="/var/www"
    )
    assert rc == 1, "www-data may not write to /"
    assert out.splitlines() == ["33", "33", "33 500", "/var/www"]
    assert "Permission denied" in err
    assert_only_changes(upper, busybox, set())


def test_exit_codes_propagate(runtime: OCIRuntime, layer: tuple[Path, Path]) -> None:
    rootfs, _ = layer
    for code in (0, 1, 3, 127, 255):
        assert _run(runtime, rootfs, f"exit {code}")[0] == code


def test_signalled_container_is_128_plus_signal(
    runtime: OCIRuntime, layer: tuple[Path, Path], tmp_path: Path
) -> None:
    rootfs, _ = layer
    cid = new_container_id()
    bundle = tmp_path / "bundle"
    write_config(bundle, generate(SpecOptions(args=["sleep", "60"], rootfs=str(rootfs))))
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(runtime.run(bundle, cid, timeout=60)))
    t.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if runtime.state(cid).status == "running":
                    break
            except NotFound:
                pass
            time.sleep(0.05)
        runtime.kill(cid, "KILL")
    finally:
        t.join(30)
    assert result == [137]
    with pytest.raises(NotFound, match="No such container"):
        runtime.state(cid)  # deleted by run()


def test_network_none_has_only_lo(runtime: OCIRuntime, layer: tuple[Path, Path]) -> None:
    rootfs, _ = layer
    rc, out, err = _run(runtime, rootfs, "ls /sys/class/net", network="none")
    assert rc == 0, err
    assert out.split() == ["lo"]
    rc, out, _ = _run(runtime, rootfs, "ip -o link show lo", network="none")
    assert "UP" in out or "LOOPBACK,UP" in out
    # The build default shares the host's network.
    rc, out, _ = _run(runtime, rootfs, "ls /sys/class/net")
    assert sorted(out.split()) == sorted(os.listdir("/sys/class/net"))


def test_hostname_hosts_and_resolv(
    runtime: OCIRuntime, layer: tuple[Path, Path], busybox: Path
) -> None:
    rootfs, upper = layer
    rc, out, _ = _run(
        runtime, rootfs, "hostname; cat /etc/hostname; head -1 /etc/hosts", hostname="box1"
    )
    assert out.splitlines() == ["box1", "box1", "127.0.0.1\tlocalhost box1"]
    rc, out, _ = _run(runtime, rootfs, "hostname")
    assert (rc, out) == (0, "buildkitsandbox\n")
    assert_only_changes(upper, busybox, set())


def test_docker_default_security(runtime: OCIRuntime, layer: tuple[Path, Path]) -> None:
    rootfs, _ = layer
    rc, out, _ = _run(
        runtime, rootfs, "grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status"
    )
    status = dict(line.split(":\t") for line in out.splitlines())
    assert status == {
        "CapBnd": "00000000a80425fb",
        "CapEff": "00000000a80425fb",
        "NoNewPrivs": "0",
        "Seccomp": "2",
    }
    rc, out, _ = _run(runtime, rootfs, "grep NoNewPrivs /proc/self/status", no_new_privileges=True)
    assert out.split() == ["NoNewPrivs:", "1"]
    # Masked and read-only paths (this kernel has no /proc/kcore; /proc/keys is masked too).
    assert os.path.getsize("/proc/keys") == 0 and open("/proc/keys").read()  # noqa: SIM115
    rc, out, err = _run(
        runtime, rootfs, "cat /proc/keys | wc -c; echo 1 > /proc/sys/kernel/domainname"
    )
    assert out.strip() == "0" and rc != 0 and "Read-only file system" in err


def test_seccomp_filter_is_enforced(runtime: OCIRuntime, layer: tuple[Path, Path]) -> None:
    """CAP_SYS_ADMIN alone lets mount(2) through only when the filter allows it too."""
    rootfs, _ = layer
    script = "mount -t tmpfs none /tmp && echo mounted"
    rc, out, err = _run(runtime, rootfs, script, cap_add=["SYS_ADMIN"])
    assert (rc, out) == (0, "mounted\n"), err
    strict = default_profile(DEFAULT_CAPABILITIES)  # the filter for default caps: no mount
    rc, out, err = _run(runtime, rootfs, script, cap_add=["SYS_ADMIN"], seccomp=strict)
    assert rc != 0 and out == "" and "permission denied" in err


def test_rlimits_are_capped_and_applied(runtime: OCIRuntime, layer: tuple[Path, Path]) -> None:
    rootfs, _ = layer
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    rc, out, err = _run(
        runtime, rootfs, "ulimit -n; ulimit -Hn", rlimits=[Rlimit("RLIMIT_NOFILE", 10**7, 10**7)]
    )
    assert rc == 0, err  # runc would fail with "error setting rlimit" if not capped
    want = capped_rlimits([Rlimit("RLIMIT_NOFILE", 10**7, 10**7)])[0]
    assert out.split() == [str(want.soft), str(want.hard)]
    if hard != resource.RLIM_INFINITY:
        assert want.hard <= hard


def test_readonly_rootfs(runtime: OCIRuntime, layer: tuple[Path, Path], busybox: Path) -> None:
    rootfs, upper = layer
    rc, _, err = _run(runtime, rootfs, "touch /x", readonly_rootfs=True)
    assert rc != 0 and "Read-only file system" in err
    assert_only_changes(upper, busybox, set())


def test_command_not_found(runtime: OCIRuntime, layer: tuple[Path, Path]) -> None:
    rootfs, _ = layer
    with pytest.raises(ContainerError, match="executable file not found") as exc:
        run_container(
            rootfs, SpecOptions(args=["nosuchcmd"]), runtime=runtime, on_output=lambda s, c: None
        )
    assert exc.value.exit_code == 127
    assert runtime.list() == []


def test_timeout_kills_and_deletes(runtime: OCIRuntime, layer: tuple[Path, Path]) -> None:
    rootfs, _ = layer
    t0 = time.monotonic()
    with pytest.raises(ContainerError, match="did not finish within 1s"):
        run_container(
            rootfs,
            SpecOptions(args=["/bin/sh", "-c", "echo started; sleep 60"]),
            runtime=runtime,
            on_output=lambda s, c: None,
            timeout=1,
        )
    assert time.monotonic() - t0 < 15
    assert runtime.list() == []


def test_lifecycle_create_start_kill_delete(
    runtime: OCIRuntime, layer: tuple[Path, Path], tmp_path: Path
) -> None:
    rootfs, _ = layer
    cid = new_container_id()
    bundle = tmp_path / "bundle"
    write_config(bundle, generate(SpecOptions(args=["sleep", "60"], rootfs=str(rootfs))))
    try:
        runtime.create(bundle, cid, pid_file=tmp_path / "pid")
        st = runtime.state(cid)
        assert st.status == "created" and st.pid > 0
        assert int((tmp_path / "pid").read_text()) == st.pid
        assert st.bundle == str(bundle)
        assert [c.id for c in runtime.list()] == [cid]
        runtime.start(cid)
        assert runtime.state(cid).status == "running"
        runtime.kill(cid, "SIGKILL")
        deadline = time.monotonic() + 10
        while runtime.state(cid).status != "stopped" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runtime.state(cid).status == "stopped"
        runtime.delete(cid)
        with pytest.raises(NotFound):
            runtime.state(cid)
        with pytest.raises(NotFound):
            runtime.delete(cid)
    finally:
        try:
            runtime.delete(cid, force=True)
        except NotFound:
            pass


def test_create_reports_runtime_errors(runtime: OCIRuntime, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    write_config(bundle, generate(SpecOptions(args=["x"], rootfs=str(tmp_path / "missing"))))
    with pytest.raises(ContainerError, match=r"runc create failed: .*missing"):
        runtime.create(bundle, new_container_id())
    assert runtime.list() == []


def test_ctrl_c_kills_and_deletes(runtime: OCIRuntime, layer: tuple[Path, Path]) -> None:
    """A KeyboardInterrupt while waiting (here from a real SIGALRM) stops the container."""
    import signal

    rootfs, _ = layer

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_container(rootfs, SpecOptions(args=["sleep", "60"]), runtime=runtime)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.monotonic() - t0 < 15
    assert runtime.list() == []
