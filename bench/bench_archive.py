"""Benchmarks of gantry import / save / load against podman (and docker when dockerd runs).

Rows (seconds, wall clock; peak RSS of the gantry process in MB):
  * save and load of a three-layer image of BENCH_SIZE_MB (default 1024) incompressible
    bytes: gantry vs ``podman save``/``podman load`` vs ``docker save``/``docker load``;
  * import of a ~200 MB root filesystem tar: gantry vs ``podman import``;
  * ``gantry images`` with 1,000 images in the store (target: under 0.3 s).
Everything lives on /dev/shm; podman uses a private root (overlay driver). Docker rows come
from a private dockerd (bench/_dockerd.py: its own containerd, data root on /dev/shm, no
bridge, no iptables, so the host's network is left alone), started when dockerd is installed
and stopped at the end; ``--no-docker`` skips them. Docker and podman are measured alike:
the image is loaded (untimed) from gantry's archive, then ``save`` of it is timed, and
``load`` of the archive the peer itself saved is timed.

Compare tools by the ratios of one run (printed as peer/gantry: above 1 means gantry is
faster): the machine is shared and noisy. CPU seconds are printed beside wall seconds; they
hold up better under load. For gantry and podman they are the process's (user+sys); for
docker the client does nothing, so they are dockerd's and containerd's.

    python bench/bench_archive.py [--no-docker] [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _dockerd  # bench/_dockerd.py: this script's directory is on sys.path

from gantry.archive import import_image
from gantry.layers.create import create
from gantry.oci import (
    ContainerConfig,
    Descriptor,
    History,
    ImageConfig,
    Manifest,
    RootFS,
    mediatypes,
    rfc3339,
)
from gantry.store import Store

MB = 1 << 20
SIZE_MB = int(os.environ.get("BENCH_SIZE_MB", "1024"))
GANTRY = [sys.executable, "-m", "gantry"]
LAST_CPU = [0.0]


def timed(
    cmd: list[str], env: dict[str, str] | None = None, stdin: int | None = None
) -> tuple[float, float]:
    """(seconds, peak RSS MB) of one command run to completion; fails loudly.
    ``LAST_CPU[0]`` is set to its CPU seconds (user + sys)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(
        cmd,
        env={**os.environ, **(env or {})},
        stdin=stdin,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t0
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        assert p.stderr is not None
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024


def random_file(path: Path, mb: int) -> None:
    """Written in small pieces: this process stays small, and so do the children it forks
    (a forked child's peak RSS starts at its parent's)."""
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(MB))


def three_layer_image(store: Store, work: Path, total_mb: int) -> str:
    """A three-layer image of incompressible data, built through gantry.layers."""
    layers, diff_ids = [], []
    for i in range(3):
        d = work / f"layer{i}"
        (d / f"data{i}").mkdir(parents=True)
        left = total_mb // 3
        n = 0
        while left > 0:
            chunk = min(left, 64)
            random_file(d / f"data{i}" / f"blob{n}", chunk)
            left -= chunk
            n += 1
        with store.content.writer() as w:
            info = create(d, w, compression="gzip")  # type: ignore[arg-type]
        shutil.rmtree(d)
        layers.append(Descriptor(info.media_type, info.digest, info.size))
        diff_ids.append(info.diff_id)
    now = rfc3339(__import__("datetime").datetime.now(__import__("datetime").UTC))
    config = ImageConfig(
        architecture="amd64",
        os="linux",
        rootfs=RootFS(tuple(diff_ids)),
        config=ContainerConfig(cmd=("sh",)),
        history=tuple(History(created=now, created_by=f"layer {i}") for i in range(3)),
        created=now,
    ).to_json()
    store.content.write(config)
    manifest = Manifest(Descriptor.of(config, mediatypes.OCI_CONFIG), tuple(layers))
    return str(
        store.add_image(manifest.to_json(), media_type=manifest.media_type, tags=["bench/big:1"]).id
    )


def daemon_cpu(docker: _dockerd.Docker) -> float:
    """CPU seconds (user+sys, with reaped children) used so far by dockerd and containerd."""
    ticks = 0
    for pid in docker.pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def timed_docker(docker: _dockerd.Docker, *args: str) -> tuple[float, float]:
    """(seconds, CPU seconds of client + daemons) of ``docker ARGS``."""
    before = daemon_cpu(docker)
    wall, _ = timed([docker.cli, *args], docker.env)
    return wall, LAST_CPU[0] + daemon_cpu(docker) - before


def row(name: str, *cells: str) -> None:
    print(f"| {name} | {' | '.join(cells)} |", flush=True)


def median_run(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The run with the median wall time (its CPU seconds with it)."""
    return sorted(runs)[len(runs) // 2]


def cell(t: tuple[float, float], gantry: float | None = None) -> str:
    ratio = f", {t[0] / gantry:.2f}x" if gantry else ""
    return f"{t[0]:.2f} ({t[1]:.2f}{ratio})"


def peer_rounds(
    archive: Path,
    out: Path,
    runs: int,
    cmd: list[str],
    docker: _dockerd.Docker | None,
    *,
    keep: bool = False,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(save, load) medians of a peer CLI ``cmd`` (podman, or docker's client with
    ``docker`` its daemon): the image is loaded untimed from gantry's ``archive``, then
    ``save`` of it to ``out`` is timed, then ``load`` of ``out`` into an empty store.
    ``keep``: leave ``out`` in place (it is removed otherwise)."""
    env = docker.env if docker else None

    def run(*args: str) -> tuple[float, float]:
        if docker is not None:
            return timed_docker(docker, *args)
        return timed([*cmd, *args])[0], LAST_CPU[0]

    def forget() -> None:
        subprocess.run([*cmd, "rmi", "-f", "bench/big:1"], env=env, capture_output=True)
        subprocess.run([*cmd, "image", "prune", "-a", "-f"], env=env, capture_output=True)

    subprocess.run(
        [*cmd, "load", "-q", "-i", str(archive)], env=env, check=True, capture_output=True
    )
    saves, loads = [], []
    for _ in range(runs):
        out.unlink(missing_ok=True)
        saves.append(run("save", "-o", str(out), "bench/big:1"))
    for _ in range(runs):
        forget()
        loads.append(run("load", "-i", str(out)))
    forget()
    if not keep:
        out.unlink()
    return median_run(saves), median_run(loads)


def load_rounds(
    archive: Path, runs: int, cmd: list[str] | None, store: Path | None
) -> tuple[tuple[float, float], float]:
    """(median (seconds, CPU s), peak RSS MB) of loading ``archive`` into an empty store:
    gantry's at ``store`` (``cmd`` None, removed after), or podman's (``cmd``, emptied)."""
    loads, rss = [], 0.0
    for _ in range(runs):
        if cmd is not None:
            subprocess.run([*cmd, "rmi", "-a", "-f"], capture_output=True)
            loads.append((timed([*cmd, "load", "-i", str(archive)])[0], LAST_CPU[0]))
            continue
        assert store is not None
        shutil.rmtree(store, ignore_errors=True)
        wall, peak = timed([*GANTRY, "load", "-i", str(archive)], {"GANTRY_ROOT": str(store)})
        loads.append((wall, LAST_CPU[0]))
        rss = max(rss, peak)
    if cmd is not None:
        subprocess.run([*cmd, "rmi", "-a", "-f"], capture_output=True)
    elif store is not None:
        shutil.rmtree(store, ignore_errors=True)
    return median_run(loads), rss


DOCKER: list[_dockerd.Docker] = []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--no-docker", action="store_true", help="skip the docker rows")
    ap.add_argument("--runs", type=int, default=1, help="save/load rounds per tool (median)")
    a = ap.parse_args()
    no_docker = (
        "--no-docker"
        if a.no_docker
        else None
        if _dockerd.available()
        else "dockerd, containerd or docker not installed"
    )
    work = Path(tempfile.mkdtemp(prefix="gantry-bench-archive-", dir="/dev/shm"))
    podman = ["podman", "--root", str(work / "p-root"), "--runroot", str(work / "p-run"),
              "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]  # fmt: skip
    with contextlib.ExitStack() as stack:
        if no_docker is None:
            try:
                DOCKER.append(stack.enter_context(_dockerd.dockerd()))
            except (RuntimeError, TimeoutError) as err:
                no_docker = f"dockerd did not start: {str(err).splitlines()[0]}"
        try:
            _bench(work, podman, a.runs, no_docker)
        finally:
            subprocess.run([*podman, "rmi", "-a", "-f"], capture_output=True)
            shutil.rmtree(work, ignore_errors=True)


def _bench(work: Path, podman: list[str], runs: int, no_docker: str | None) -> None:
    root = work / "g-root"
    with Store(root) as s:
        three_layer_image(s, work, SIZE_MB)
    env = {"GANTRY_ROOT": str(root)}
    docker_name = "docker" if no_docker else f"docker {_dockerd.version(DOCKER[0])}"
    print(f"# gantry archive bench: {SIZE_MB} MB three-layer image, on /dev/shm, ", end="")
    print(f"median of {runs}\n")
    print(
        "| operation | gantry s (CPU s, peak RSS MB) | podman s (CPU s, ratio) "
        f"| {docker_name} s (daemon CPU s, ratio) |"
    )
    print("|---|---|---|---|")

    g_tar = work / "g.tar"
    g_saves, save_rss = [], 0.0
    for _ in range(runs):
        g_tar.unlink(missing_ok=True)
        wall, peak = timed([*GANTRY, "save", "-o", str(g_tar), "bench/big:1"], env)
        g_saves.append((wall, LAST_CPU[0]))
        save_rss = max(save_rss, peak)
    g_save = median_run(g_saves)
    g_load, load_rss = load_rounds(g_tar, runs, None, work / "g-root2")
    p_save, p_load = peer_rounds(g_tar, work / "p.tar", runs, podman, None)
    d_save = d_load = f"n/a ({no_docker})" if no_docker else ""
    d_tar = work / "d.tar"
    dl = (0.0, 0.0)
    if not no_docker:
        ds, dl = peer_rounds(g_tar, d_tar, runs, [DOCKER[0].cli], DOCKER[0], keep=True)
        d_save, d_load = cell(ds, g_save[0]), cell(dl, g_load[0])
    g_tar.unlink()
    row(
        f"save {SIZE_MB} MB",
        f"{g_save[0]:.2f} ({g_save[1]:.2f}, {save_rss:.0f})",
        cell(p_save, g_save[0]),
        d_save,
    )
    row(
        f"load {SIZE_MB} MB (each its own save)",
        f"{g_load[0]:.2f} ({g_load[1]:.2f}, {load_rss:.0f})",
        cell(p_load, g_load[0]),
        d_load,
    )
    if not no_docker:
        # one input for all three: docker's own archive (layers as uncompressed tars)
        gd, gd_rss = load_rounds(d_tar, runs, None, work / "g-root2")
        pd, _ = load_rounds(d_tar, runs, podman, None)
        d_tar.unlink()
        row(
            f"load {SIZE_MB} MB, docker's archive",
            f"{gd[0]:.2f} ({gd[1]:.2f}, {gd_rss:.0f})",
            cell(pd, gd[0]),
            cell(dl, gd[0]),
        )

    # import of a ~200 MB root filesystem tar (half random, half text-like, many files)
    rootfs = work / "rootfs"
    for i in range(2000):
        d = rootfs / f"d{i % 50}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes((b"line of text %d\n" % i) * 1600)
    random_file(rootfs / "big", 150)
    tar_path = work / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar_path), "."], check=True)
    shutil.rmtree(rootfs)
    size = tar_path.stat().st_size // MB
    g_imp, g_imp_rss = timed([*GANTRY, "import", str(tar_path), "rootfs:1"], env)
    g_imp_cpu = LAST_CPU[0]
    p_imp = timed([*podman, "import", str(tar_path), "rootfs:1"])[0], LAST_CPU[0]
    d_imp = d_load
    if not no_docker:
        d_imp = cell(timed_docker(DOCKER[0], "import", str(tar_path), "rootfs:1"), g_imp)
    row(
        f"import {size} MB rootfs tar",
        f"{g_imp:.2f} ({g_imp_cpu:.2f}, {g_imp_rss:.0f})",
        cell(p_imp, g_imp),
        d_imp,
    )
    tar_path.unlink()

    # 1,000 images in a store
    many = work / "many"
    with Store(many) as s:
        base = import_image(s, io.BytesIO(b"\0" * 1024), "m:0")
        manifest = s.manifest(base)
        cfg = json.loads(s.config_bytes(base))
        for i in range(1, 1000):
            cfg["config"] = {"Env": [f"N={i}"]}
            raw = json.dumps(cfg).encode()
            s.content.write(raw)
            m = Manifest(Descriptor.of(raw, mediatypes.OCI_CONFIG), manifest.layers)
            s.add_image(m.to_json(), media_type=m.media_type, tags=[f"m:{i}"])
    listings = []
    for _ in range(5):
        wall, peak = timed([*GANTRY, "images"], {"GANTRY_ROOT": str(many)})
        listings.append((wall, LAST_CPU[0], peak))
    wall, cpu, peak = sorted(listings)[2]
    row("images, 1,000 images (median of 5)", f"{wall:.2f} ({cpu:.2f}, {peak:.0f})", "", "")


if __name__ == "__main__":
    main()
