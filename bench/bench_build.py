"""Build benchmark: gantry vs ``buildah bud --layers`` vs ``docker build`` on the same Dockerfiles.

Docker runs against a private dockerd (bench/_dockerd.py: own containerd and data root on
/dev/shm, no bridge, no iptables: the host's network is left alone), with Debian's 20.10
client and BuildKit (DOCKER_BUILDKIT=1); RUN steps get ``--network host`` as that daemon
has no bridge. If BuildKit cannot build there, the legacy builder is timed instead (the
row says which); ``--docker-legacy`` times both; ``--no-docker`` skips docker. The busybox
base is imported into every tool from the same root filesystem tar.

Cases (machine.md's table): multi-stage on busybox, 30 steps on busybox, 10,000 small
files + one big file COPY, and -- with ``--debian`` -- a Python app on a Debian base
(needs debootstrap and network). For each: cold build, no-change rebuild, rebuild after
changing one late-copied file; medians of ``--runs``. Everything lives under a work
directory on /dev/shm (tmpfs) unless ``--work`` says otherwise.

    python bench/bench_build.py [--runs 3] [--big-mb 500] [--no-docker] [--docker-legacy]
                                [--debian] [--no-buildah]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _dockerd  # bench/_dockerd.py: this script's directory is on sys.path

PROJECT = Path(__file__).resolve().parent.parent
PY = str(PROJECT / ".venv" / "bin" / "python")


def sh(*cmd: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    r = subprocess.run(cmd, capture_output=True, env=env, cwd=cwd)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr.decode()[-3000:]}")


def timed(tool: Tool, ctx: Path, *, no_cache: bool = False) -> float:
    t0 = time.perf_counter()
    tool.build(ctx, no_cache=no_cache)
    return time.perf_counter() - t0


# ---------------------------------------------------------------- contexts


def ctx_multistage(d: Path) -> str:
    (d / "main.sh").write_text("#!/bin/sh\necho hello\n")
    (d / "Dockerfile").write_text(
        "FROM busybox AS build\n"
        "WORKDIR /src\n"
        "COPY main.sh .\n"
        "RUN cp main.sh /tool && chmod 755 /tool\n"
        "FROM busybox AS assets\n"
        "RUN mkdir /assets && echo a > /assets/a\n"
        "FROM busybox\n"
        "COPY --from=assets /assets /assets\n"
        "COPY --from=build /tool /usr/bin/tool\n"
        'CMD ["tool"]\n'
    )
    return "main.sh"


def ctx_30steps(d: Path) -> str:
    lines = ["FROM busybox"]
    for i in range(10):
        (d / f"f{i}.txt").write_text(f"{i}\n")
        lines += [f"ENV V{i}={i}", f"COPY f{i}.txt /d/", f"RUN cat /d/f{i}.txt >> /log"]
    (d / "Dockerfile").write_text("\n".join(lines[:31]) + "\n")
    return "f9.txt"


def ctx_bigcopy(d: Path, big_mb: int) -> str:
    files = d / "files"
    for i in range(100):
        sub = files / f"d{i:03d}"
        sub.mkdir(parents=True)
        for j in range(100):
            (sub / f"f{j:03d}.txt").write_text(f"{i}-{j}\n")
    with open(d / "big.bin", "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(big_mb):
            f.write(chunk)
    (d / "late.txt").write_text("late\n")
    (d / "Dockerfile").write_text(
        "FROM busybox\nCOPY files /files\nCOPY big.bin /big.bin\nCOPY late.txt /late.txt\n"
    )
    return "late.txt"


def ctx_debian(d: Path) -> str:
    (d / "requirements.txt").write_text("flask\n")
    (d / "app.py").write_text("print('app')\n")
    (d / "Dockerfile").write_text(
        "FROM debian-base\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends python3 "
        "&& rm -rf /var/lib/apt/lists/*\n"
        "WORKDIR /app\n"
        "COPY requirements.txt .\n"
        "COPY app.py .\n"
        'CMD ["python3", "app.py"]\n'
    )
    return "app.py"


# ---------------------------------------------------------------- tools


class Tool:
    name = ""

    def base(self, tag: str, rootfs_tar: Path) -> None: ...
    def build(self, ctx: Path, no_cache: bool = False) -> None: ...
    def reset(self) -> None: ...


class Gantry(Tool):
    name = "gantry"

    def __init__(self, work: Path) -> None:
        self.root = work / "gantry-root"
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def _g(self, *args: str, cwd: Path | None = None) -> None:
        sh(PY, "-m", "gantry", "--root", str(self.root), *args, env=self.env, cwd=cwd)

    def base(self, tag: str, rootfs_tar: Path) -> None:
        self._g("import", str(rootfs_tar), tag)

    def build(self, ctx: Path, no_cache: bool = False) -> None:
        self._g(
            "build", "-q", "-t", "bench:latest", *(["--no-cache"] if no_cache else []), ".", cwd=ctx
        )

    def reset(self) -> None:
        self._g("builder", "prune", "-a", "-f")


class Buildah(Tool):
    name = "buildah --layers"

    def __init__(self, work: Path) -> None:
        self.root = work / "buildah-root"
        self.runroot = work / "buildah-run"
        self.args = ["--root", str(self.root), "--runroot", str(self.runroot)]

    def base(self, tag: str, rootfs_tar: Path) -> None:
        d = rootfs_tar.parent / f"buildah-base-{tag}"
        d.mkdir(exist_ok=True)
        shutil.copy(rootfs_tar, d / "rootfs.tar")
        (d / "Dockerfile").write_text("FROM scratch\nADD rootfs.tar /\n")
        sh("buildah", *self.args, "bud", "--layers", "-q", "-t", tag, str(d))

    def build(self, ctx: Path, no_cache: bool = False) -> None:
        sh(
            "buildah",
            *self.args,
            "bud",
            "--layers",
            "-q",
            "-t",
            "bench:latest",
            *(["--no-cache"] if no_cache else []),
            str(ctx),
        )


class DockerBuild(Tool):
    """``docker build`` with the Debian 20.10 client (the 28 client has no buildx) against
    the bench's private dockerd (bench/_dockerd.py). That daemon has no bridge, so RUN
    steps get ``--network host``; BuildKit when it builds there, else the legacy builder."""

    CLI = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"

    def __init__(self, daemon: _dockerd.Docker, *, buildkit: bool) -> None:
        self.daemon = daemon
        self.buildkit = buildkit
        self.name = "docker BuildKit" if buildkit else "docker legacy"
        self.env = {**daemon.env, "DOCKER_BUILDKIT": "1" if buildkit else "0"}

    def base(self, tag: str, rootfs_tar: Path) -> None:
        p = self.daemon.run("image", "inspect", tag, check=False)
        if p.returncode != 0:  # one import serves both builders of the daemon
            sh(self.CLI, "import", str(rootfs_tar), tag, env=self.env)

    def build(self, ctx: Path, no_cache: bool = False) -> None:
        sh(
            self.CLI,
            "build",
            "-q",
            "--network",
            "host",
            "-t",
            "bench:latest",
            *(["--no-cache"] if no_cache else []),
            str(ctx),
            env=self.env,
        )

    def probe(self, work: Path) -> str | None:
        """Why this builder cannot build a RUN step on this daemon (None: it can)."""
        ctx = work / f"probe-{self.buildkit}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo probe > /probe\n")
        r = subprocess.run(
            [self.CLI, "build", "-q", "--network", "host", "-t", "probe:1", str(ctx)],
            env=self.env,
            capture_output=True,
            text=True,
        )
        shutil.rmtree(ctx)
        self.daemon.run("rmi", "probe:1", check=False)
        if r.returncode == 0:
            return None
        lines = (r.stderr or r.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit {r.returncode}"


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--big-mb", type=int, default=500)
    ap.add_argument("--no-docker", action="store_true", help="skip the docker rows")
    ap.add_argument(
        "--docker-legacy", action="store_true", help="also time docker's legacy builder"
    )
    ap.add_argument("--docker", action="store_true", help=argparse.SUPPRESS)  # on by default now
    ap.add_argument("--debian", action="store_true")
    ap.add_argument("--no-buildah", action="store_true")
    ap.add_argument("--work", default="/dev/shm")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (overlay mounts, runc)")
    work = Path(tempfile.mkdtemp(prefix="gantry-bench-build-", dir=a.work))
    tools: list[Tool] = [Gantry(work)]
    if not a.no_buildah:
        tools.append(Buildah(work))
    missing: list[tuple[str, str]] = []  # (tool, why it has no numbers)
    with contextlib.ExitStack() as stack:
        try:
            _run(a, work, tools, missing, stack)
        finally:
            stack.close()  # the daemon first: its mounts are under its own directory
            subprocess.run(
                ["umount", "-R", str(work / "buildah-root" / "overlay")], capture_output=True
            )
            shutil.rmtree(work, ignore_errors=True)


def _docker_tools(
    a: argparse.Namespace, work: Path, tar: Path, stack: contextlib.ExitStack
) -> tuple[list[Tool], list[tuple[str, str]]]:
    """The docker builders that work with a private dockerd, and why the others have no row."""
    if a.no_docker:
        return [], [("docker", "skipped (--no-docker)")]
    if not _dockerd.available():
        return [], [("docker", "dockerd, containerd or docker not installed")]
    try:
        daemon = stack.enter_context(_dockerd.dockerd())
    except (RuntimeError, TimeoutError) as err:
        return [], [("docker", f"dockerd did not start: {str(err).splitlines()[0]}")]
    version = _dockerd.version(daemon)
    found: list[Tool] = []
    missing: list[tuple[str, str]] = []
    for buildkit in (True, False):
        tool = DockerBuild(daemon, buildkit=buildkit)
        tool.base("busybox", tar)
        why = tool.probe(work)
        if why is not None:
            missing.append((tool.name, f"cannot build on dockerd {version}: {why}"))
        elif not found or a.docker_legacy:
            found.append(tool)  # legacy only when BuildKit failed, or when asked for
    for t in found:
        t.name += " (host net)"
    return found, missing


def _run(
    a: argparse.Namespace,
    work: Path,
    tools: list[Tool],
    missing: list[tuple[str, str]],
    stack: contextlib.ExitStack,
) -> None:
    rootfs = work / "busybox"
    sh(str(PROJECT / "scripts" / "busybox-rootfs.sh"), str(rootfs))
    tar = work / "busybox.tar"
    sh("tar", "-C", str(rootfs), "-cf", str(tar), ".")
    for t in tools:
        t.base("busybox", tar)
    dockers, why = _docker_tools(a, work, tar, stack)
    tools += dockers
    missing += why
    cases: list[tuple[str, Callable[[Path], str]]] = [
        ("multi-stage, busybox", ctx_multistage),
        ("30 steps on busybox", ctx_30steps),
        (f"10,000 files + {a.big_mb} MB file COPY", lambda d: ctx_bigcopy(d, a.big_mb)),
    ]
    if a.debian:
        deb = work / "debian"
        sh("debootstrap", "--variant=minbase", "bookworm", str(deb))
        deb_tar = work / "debian.tar"
        sh("tar", "-C", str(deb), "-cf", str(deb_tar), ".")
        for t in tools:
            t.base("debian-base", deb_tar)
        cases.insert(0, ("Python app on Debian (apt + COPY)", ctx_debian))
    rows: list[tuple[str, str, float, float, float]] = []
    for title, make in cases:
        ctx = work / f"ctx-{len(rows)}"
        ctx.mkdir()
        late = make(ctx)
        for t in tools:
            cold, warm, late_t = [], [], []
            for n in range(a.runs):
                cold.append(timed(t, ctx, no_cache=True))
                warm.append(timed(t, ctx))
                (ctx / late).write_text(f"changed {n} {time.time()}\n")
                late_t.append(timed(t, ctx))
            rows.append(
                (
                    title,
                    t.name,
                    statistics.median(cold),
                    statistics.median(warm),
                    statistics.median(late_t),
                )
            )
            print(
                f"{title:<40} {t.name:<28} {rows[-1][2]:7.2f} {rows[-1][3]:7.2f} "
                f"{rows[-1][4]:7.2f}",
                file=sys.stderr,
            )
    print(f"\n{'case':<40} {'tool':<28} {'cold':>7} {'no-chg':>7} {'1 file':>7}   ratios vs gantry")
    for title, _make in cases:
        mine = next(r for r in rows if r[0] == title and r[1] == "gantry")
        for r in rows:
            if r[0] != title:
                continue
            ratio = (
                ""
                if r is mine
                else "   "
                + " / ".join(
                    f"{x / y:.2f}x" if y else "-" for x, y in zip(r[2:], mine[2:], strict=True)
                )
            )
            print(f"{r[0]:<40} {r[1]:<28} {r[2]:7.2f} {r[3]:7.2f} {r[4]:7.2f}{ratio}")
    for name, reason in missing:
        print(f"{'(every case)':<40} {name:<28} n/a: {reason}")


if __name__ == "__main__":
    main()
