"""``gantry run`` against podman: one short container, and 50 detached ones.

Rows (seconds, wall clock):
  * ``run --rm busybox true``: median (and min/max) of N runs (BENCH_RUNS, default 20),
    gantry with the default bridge network and with ``--network none``, podman likewise;
  * 50 containers started with ``run -d busybox sleep 300`` in a loop, then all removed with
    one ``rm -f``: time to start, time to remove, and what is left afterwards (containers,
    mounts, runc state, supervisors / conmons, network namespaces).
Both tools get a private root on /dev/shm and the same busybox root filesystem (gantry
import -> gantry save -> podman load). Docker rows need a dockerd started by hand and are
left out here (no dockerd on this machine by default). The machine is shared and has two
cores: compare tools by the ratios of one run.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
GANTRY = [sys.executable, "-m", "gantry"]
RUNS = int(os.environ.get("BENCH_RUNS", "20"))
DETACHED = int(os.environ.get("BENCH_DETACHED", "50"))


def sh(cmd: list[str], env: dict[str, str] | None = None, **kw: object) -> str:
    p = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, check=False,
                       **kw)  # type: ignore[call-overload]  # fmt: skip
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    return str(p.stdout.decode())


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    sh(cmd, env)
    return time.perf_counter() - t0


def stats(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} (min {min(xs):.3f}, max {max(xs):.3f})"


def leftovers_gantry(root: Path) -> dict[str, int]:
    mounts = _mounts_under(root)
    ctrs = len(list((root / "containers").iterdir())) if (root / "containers").exists() else 0
    runc = sh(["runc", "--root", str(root / "runtime" / "runc"), "list", "-q"]).split()
    sups = 0
    for e in os.listdir("/proc"):
        if e.isdigit() and _comm(e).startswith("gantry-supervis"):
            try:
                if os.readlink(f"/proc/{e}/cwd").startswith(str(root) + "/"):
                    sups += 1
            except OSError:
                continue
    netns = [n for n in os.listdir("/run/netns")] if os.path.isdir("/run/netns") else []
    return {"containers": ctrs, "mounts": mounts, "runc": len(runc), "supervisors": sups,
            "netns(all gantry)": sum(1 for n in netns if n.startswith("gantry"))}  # fmt: skip


def leftovers_podman(pod: list[str], root: Path) -> dict[str, int]:
    ctrs = sh([*pod, "ps", "-aq"]).split()
    mounts = _mounts_under(root)
    conmons = sum(1 for e in os.listdir("/proc") if e.isdigit() and _comm(e) == "conmon")
    return {"containers": len(ctrs), "mounts": mounts, "conmon (all)": conmons}


def _mounts_under(root: Path) -> int:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return sum(1 for line in lines if str(root) in line.split()[4])


def _comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-run-", dir="/dev/shm"))
    groot = base / "gantry"
    genv = {"GANTRY_ROOT": str(groot), "PYTHONPATH": str(PROJECT / "src")}
    pod = ["podman", "--root", str(base / "podman"), "--runroot", str(base / "podman-run"),
           "--storage-driver", "overlay"]  # fmt: skip
    podman = shutil.which("podman") is not None
    try:
        rootfs = base / "rootfs"
        sh([str(PROJECT / "scripts" / "busybox-rootfs.sh"), str(rootfs)])
        tar = base / "bb.tar"
        sh(["tar", "-C", str(rootfs), "-cf", str(tar), "."])
        sh([*GANTRY, "import", "--change", 'CMD ["sh"]', str(tar), "busybox:latest"], genv)
        if podman:
            archive = base / "bb-image.tar"
            sh([*GANTRY, "save", "-o", str(archive), "busybox:latest"], genv)
            sh([*pod, "load", "-i", str(archive)])
        rows: list[tuple[str, str]] = []
        for label, extra in (("bridge (default)", []), ("--network none", ["--network", "none"])):
            cmd = [*GANTRY, "run", "--rm", *extra, "busybox", "true"]
            timed(cmd, genv)  # warm: runtime probe, snapshot unpack
            rows.append(
                (f"gantry run --rm {label}", stats([timed(cmd, genv) for _ in range(RUNS)]))
            )
            if podman:
                pcmd = [*pod, "run", "--rm", *extra, "busybox:latest", "true"]
                timed(pcmd)
                rows.append((f"podman run --rm {label}", stats([timed(pcmd) for _ in range(RUNS)])))
        print(f"## run --rm busybox true, median of {RUNS} (s)")
        for name, value in rows:
            print(f"| {name} | {value} |")

        print(f"\n## {DETACHED} detached containers: start loop, then one rm -f (s)")
        t0 = time.perf_counter()
        ids = [sh([*GANTRY, "run", "-d", "busybox", "sleep", "300"], genv).strip()
               for _ in range(DETACHED)]  # fmt: skip
        started = time.perf_counter() - t0
        running = len(sh([*GANTRY, "ps", "-q"], genv).split())
        t0 = time.perf_counter()
        sh([*GANTRY, "rm", "-f", *ids], genv)
        removed = time.perf_counter() - t0
        deadline = time.monotonic() + 10  # supervisors finish their clean-up after rm returns
        while leftovers_gantry(groot)["supervisors"] and time.monotonic() < deadline:
            time.sleep(0.1)
        print(f"| gantry | start {started:.2f} | running {running} | rm -f {removed:.2f} | "
              f"left {leftovers_gantry(groot)} |")  # fmt: skip
        if podman:
            t0 = time.perf_counter()
            pids = [sh([*pod, "run", "-d", "busybox:latest", "sleep", "300"]).strip()
                    for _ in range(DETACHED)]  # fmt: skip
            started = time.perf_counter() - t0
            running = len(sh([*pod, "ps", "-q"]).split())
            t0 = time.perf_counter()
            sh([*pod, "rm", "-f", "-t", "0", *pids])
            removed = time.perf_counter() - t0
            print(f"| podman | start {started:.2f} | running {running} | rm -f {removed:.2f} | "
                  f"left {leftovers_podman(pod, base)} |")  # fmt: skip
    finally:
        subprocess.run([*GANTRY, "rm", "-f", *sh([*GANTRY, "ps", "-aq"], genv).split()],
                       env={**os.environ, **genv}, capture_output=True, check=False)  # fmt: skip
        if podman:
            subprocess.run([*pod, "rm", "-af", "-t", "0"], capture_output=True, check=False)
            subprocess.run([*pod, "system", "reset", "-f"], capture_output=True, check=False)
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            mp = line.split()[4]
            if mp.startswith(str(base)):
                subprocess.run(["umount", "-l", mp], check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
