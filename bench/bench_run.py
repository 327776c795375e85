"""``gantry run`` against podman and docker: one short container, and 50 detached ones.

Rows (seconds, wall clock; the tools take turns run by run, so that a load swing on this
shared machine hits every tool alike):
  * ``run --rm busybox true``: median (and min/max) of N runs (BENCH_RUNS, default 20),
    with the default bridge network and with ``--network none``, for gantry, podman and
    docker;
  * DETACHED (BENCH_DETACHED, default 50) containers started with ``run -d busybox sleep
    300`` in a loop, then all removed with one ``rm -f``: time to start, time to remove,
    and what is left afterwards (containers, mounts, runtime state, supervisors / conmons /
    shims, network namespaces).
Every tool gets a private root on /dev/shm and the same busybox root filesystem (gantry
import -> gantry save -> podman load / docker load). Docker is a private dockerd
(bench/_dockerd.py) that must leave the host's network alone, so it runs with
``--bridge=none``: its bridge rows are n/a and its detached loop uses ``--network none``
(said in the row). BENCH_DOCKER=0 leaves docker out. The machine is shared and has two
cores: compare tools by the ratios of one run, and run under the bench lock:

    flock /tmp/gantry-bench.lock .venv/bin/python bench/bench_run.py
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _dockerd  # bench/_dockerd.py: this script's directory is on sys.path

PROJECT = Path(__file__).resolve().parent.parent
GANTRY = [sys.executable, "-m", "gantry"]
RUNS = int(os.environ.get("BENCH_RUNS", "20"))
DETACHED = int(os.environ.get("BENCH_DETACHED", "50"))
WITH_DOCKER = os.environ.get("BENCH_DOCKER", "1") != "0"


def sh(cmd: list[str], env: dict[str, str] | None = None) -> str:
    p = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    return str(p.stdout.decode())


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    sh(cmd, env)
    return time.perf_counter() - t0


def stats(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} (min {min(xs):.3f}, max {max(xs):.3f})"


def _procs_named(prefix: str, under: Path | None = None) -> int:
    n = 0
    for e in os.listdir("/proc"):
        if not e.isdigit() or not _comm(e).startswith(prefix):
            continue
        if under is not None:
            try:
                if not os.readlink(f"/proc/{e}/cwd").startswith(str(under) + "/"):
                    continue
            except OSError:
                continue
        n += 1
    return n


def leftovers_gantry(root: Path) -> dict[str, int]:
    ctrs = len(list((root / "containers").iterdir())) if (root / "containers").exists() else 0
    runc = sh(["runc", "--root", str(root / "runtime" / "runc"), "list", "-q"]).split()
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    return {
        "containers": ctrs,
        "mounts": _mounts_under(root),
        "runc": len(runc),
        "supervisors": _procs_named("gantry-supervis", root),
        "netns(all gantry)": sum(1 for n in netns if n.startswith("gantry")),
    }


def leftovers_podman(pod: list[str], root: Path) -> dict[str, int]:
    return {
        "containers": len(sh([*pod, "ps", "-aq"]).split()),
        "mounts": _mounts_under(root),
        "conmon (all)": _procs_named("conmon"),
    }


def leftovers_docker(docker: _dockerd.Docker) -> dict[str, int]:
    ps = docker.run("ps", "-aq").stdout.split()
    return {
        "containers": len(ps),
        "mounts": _mounts_under(docker.base / "data") + _mounts_under(docker.base / "exec"),
        "shims": len(_dockerd_shims(docker)),
    }


def _dockerd_shims(docker: _dockerd.Docker) -> list[int]:
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit() and _comm(e).startswith("containerd-shim"):
            with contextlib.suppress(OSError):
                if str(docker.base).encode() in Path(f"/proc/{e}/cmdline").read_bytes():
                    out.append(int(e))
    return out


def _mounts_under(root: Path) -> int:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return sum(1 for line in lines if line.split()[4].startswith(str(root)))


def _comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def interleaved(cmds: dict[str, tuple[list[str], dict[str, str] | None]]) -> dict[str, str]:
    """Each command once (warm-up), then RUNS rounds running every command once per round:
    a load swing on this shared machine hits every tool alike. Median (min, max) per name."""
    for cmd, env in cmds.values():
        timed(cmd, env)  # warm: runtime probe, snapshot unpack, page cache
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(RUNS):
        for name, (cmd, env) in cmds.items():
            times[name].append(timed(cmd, env))
    return {name: stats(xs) for name, xs in times.items()}


def detached_loops(
    tools: dict[str, tuple[list[str], dict[str, str] | None, Any]],
) -> list[str]:
    """DETACHED rounds of one ``run -d`` per tool (interleaved, as above); then per tool:
    count the running ones, ``rm -f`` them all, and look for what is left. Table rows."""
    ids: dict[str, list[str]] = {name: [] for name in tools}
    spent = dict.fromkeys(tools, 0.0)
    for _ in range(DETACHED):
        for name, (base_cmd, env, _left) in tools.items():
            t0 = time.perf_counter()
            out = sh([*base_cmd, "run", "-d", *EXTRA[name], "busybox:latest", "sleep", "300"], env)
            spent[name] += time.perf_counter() - t0
            ids[name].append(out.strip())
    rows = []
    for name, (base_cmd, env, leftovers) in tools.items():
        running = len(sh([*base_cmd, "ps", "-q"], env).split())
        t0 = time.perf_counter()
        sh([*base_cmd, "rm", "-f", *RM_FLAGS[name], *ids[name]], env)
        removed = time.perf_counter() - t0
        left = leftovers()
        deadline = time.monotonic() + 10  # supervisors finish their clean-up after rm returns
        while any(left.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
            left = leftovers()
        rows.append(f"| {name} | {spent[name]:.2f} | {running} | {removed:.2f} | "
                    f"{', '.join(f'{k} {v}' for k, v in left.items())} |")  # fmt: skip
    return rows


EXTRA: dict[str, list[str]] = {"gantry": [], "podman": [], "docker (--network none)": []}
RM_FLAGS: dict[str, list[str]] = {
    "gantry": [],
    "podman": ["-t", "0"],
    "docker (--network none)": [],
}


def main() -> None:
    # this shared tree runs with PYTHONDONTWRITEBYTECODE: a module someone edited since the
    # last compile would be compiled again by every gantry process (measured, not wanted)
    sh([sys.executable, "-m", "compileall", "-q", str(PROJECT / "src")])
    print(f"uptime before: {sh(['uptime']).strip()}")
    base = Path(tempfile.mkdtemp(prefix="bench-run-", dir="/dev/shm"))
    groot = base / "gantry"
    genv = {"GANTRY_ROOT": str(groot), "PYTHONPATH": str(PROJECT / "src")}
    pod = ["podman", "--root", str(base / "podman"), "--runroot", str(base / "podman-run"),
           "--storage-driver", "overlay"]  # fmt: skip
    podman = shutil.which("podman") is not None
    docker_why = ""
    if not WITH_DOCKER:
        docker_why = "BENCH_DOCKER=0"
    elif not _dockerd.available():
        docker_why = "dockerd/containerd/docker not installed"
    with contextlib.ExitStack() as stack:
        docker: _dockerd.Docker | None = None
        try:
            rootfs = base / "rootfs"
            sh([str(PROJECT / "scripts" / "busybox-rootfs.sh"), str(rootfs)])
            tar = base / "bb.tar"
            sh(["tar", "-C", str(rootfs), "-cf", str(tar), "."])
            sh([*GANTRY, "import", "--change", 'CMD ["sh"]', str(tar), "busybox:latest"], genv)
            archive = base / "bb-image.tar"
            sh([*GANTRY, "save", "-o", str(archive), "busybox:latest"], genv)
            if podman:
                sh([*pod, "load", "-i", str(archive)])
            if not docker_why:
                try:
                    docker = stack.enter_context(_dockerd.dockerd())
                    docker.run("load", "-i", str(archive))
                except (RuntimeError, TimeoutError, AssertionError) as e:
                    docker, docker_why = None, f"private dockerd failed: {str(e)[:200]}"
            dcmd = [] if docker is None else [docker.cli]
            denv = None if docker is None else docker.env

            bridge_na = "n/a (the private dockerd runs with --bridge=none: it must not touch the host's network)"  # fmt: skip
            rows: list[tuple[str, str]] = []
            for label, extra in (("bridge (default)", []), ("--network none", ["--network", "none"])):  # fmt: skip
                cmds: dict[str, tuple[list[str], dict[str, str] | None]] = {
                    f"gantry {label}": ([*GANTRY, "run", "--rm", *extra, "busybox", "true"], genv)
                }
                if podman:
                    cmds[f"podman {label}"] = ([*pod, "run", "--rm", *extra, "busybox:latest", "true"], None)  # fmt: skip
                if docker is not None and extra:
                    cmds[f"docker {label}"] = ([*dcmd, "run", "--rm", *extra, "busybox:latest", "true"], denv)  # fmt: skip
                rows += list(interleaved(cmds).items())
                if docker is None:
                    rows.append((f"docker {label}", f"n/a ({docker_why})"))
                elif not extra:
                    rows.append((f"docker {label}", bridge_na))
            print(f"\n## run --rm busybox true, median of {RUNS} rounds, tools interleaved (s)\n")
            print("| tool, network | seconds |\n|---|---|")
            for name, value in rows:
                print(f"| {name} | {value} |")

            print(f"\n## {DETACHED} x run -d busybox sleep 300 (tools interleaved), "
                  "then one rm -f per tool (s)\n")  # fmt: skip
            print(
                "| tool | start all | running | rm -f all | left afterwards |\n|---|---|---|---|---|"
            )
            tools: dict[str, tuple[list[str], dict[str, str] | None, Any]] = {
                "gantry": (GANTRY, genv, lambda: leftovers_gantry(groot))
            }
            if podman:
                tools["podman"] = (pod, None, lambda: leftovers_podman(pod, base))
            if docker is not None:
                d = docker
                EXTRA["docker (--network none)"] = ["--network", "none"]
                tools["docker (--network none)"] = (dcmd, denv, lambda: leftovers_docker(d))
            for row in detached_loops(tools):
                print(row)
            if docker is None:
                print(f"| docker | n/a ({docker_why}) | | | |")
        finally:
            subprocess.run([*GANTRY, "rm", "-f", *sh([*GANTRY, "ps", "-aq"], genv).split()],
                           env={**os.environ, **genv}, capture_output=True, check=False)  # fmt: skip
            if podman:
                subprocess.run([*pod, "rm", "-af", "-t", "0"], capture_output=True, check=False)
                subprocess.run([*pod, "system", "reset", "-f"], capture_output=True, check=False)
            if docker is not None:
                docker.run("rm", "-f", *docker.run("ps", "-aq").stdout.split(), check=False)
    for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
        mp = line.split()[4]
        if mp.startswith(str(base)):
            subprocess.run(["umount", "-l", mp], check=False)
    shutil.rmtree(base, ignore_errors=True)
    print(f"\nuptime after: {sh(['uptime']).strip()}")


if __name__ == "__main__":
    main()
