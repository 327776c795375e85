"""Benchmarks of gantry import / save / load against podman (and docker when dockerd runs).

Rows (seconds, wall clock; peak RSS of the gantry process in MB):
  * save and load of a three-layer image of BENCH_SIZE_MB (default 1024) incompressible
    bytes: gantry vs ``podman save``/``podman load`` vs ``docker save``/``docker load``;
  * import of a ~200 MB root filesystem tar: gantry vs ``podman import``;
  * ``gantry images`` with 1,000 images in the store (target: under 0.3 s).
Everything lives on /dev/shm; podman uses a private root (overlay driver). Docker rows run
only with BENCH_DOCKER=1 and a dockerd started by hand (shared notes, machine.md gotcha 3):
starting one touches bridges and nftables, which other work on this machine may be testing.
Compare tools by the ratios of one run: the machine is shared and noisy. CPU seconds
(user+sys of the process) are printed beside wall seconds; they hold up better under load.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def docker_available() -> str | None:
    if os.environ.get("BENCH_DOCKER") != "1":
        return "skipped: set BENCH_DOCKER=1 with a dockerd running"
    if shutil.which("docker") is None:
        return "docker CLI not installed"
    r = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    if r.returncode != 0:
        return "dockerd not running (start it by hand: shared notes machine.md, gotcha 3)"
    return None


def row(name: str, gantry: str, podman: str, docker: str) -> None:
    print(f"| {name} | {gantry} | {podman} | {docker} |", flush=True)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="gantry-bench-archive-", dir="/dev/shm"))
    podman = ["podman", "--root", str(work / "p-root"), "--runroot", str(work / "p-run"),
              "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]  # fmt: skip
    no_docker = docker_available()
    try:
        root = work / "g-root"
        with Store(root) as s:
            three_layer_image(s, work, SIZE_MB)
        env = {"GANTRY_ROOT": str(root)}
        print(f"# gantry archive bench: {SIZE_MB} MB three-layer image, on /dev/shm\n")
        print("| operation | gantry s (CPU s, peak RSS MB) | podman s (CPU s) | docker s |")
        print("|---|---|---|---|")

        g_save, g_save_rss = timed([*GANTRY, "save", "-o", str(work / "g.tar"), "bench/big:1"], env)
        g_save_cpu = LAST_CPU[0]
        g_load, g_load_rss = timed(
            [*GANTRY, "load", "-i", str(work / "g.tar")], {"GANTRY_ROOT": str(work / "g-root2")}
        )
        g_load_cpu = LAST_CPU[0]
        # podman gets the same image from gantry's archive (untimed), then is timed
        subprocess.run(
            [*podman, "load", "-q", "-i", str(work / "g.tar")], check=True, capture_output=True
        )
        p_save, _ = timed([*podman, "save", "-o", str(work / "p.tar"), "bench/big:1"])
        p_save_cpu = LAST_CPU[0]
        subprocess.run([*podman, "rmi", "-a", "-f"], check=True, capture_output=True)
        p_load, _ = timed([*podman, "load", "-i", str(work / "p.tar")])
        p_load_cpu = LAST_CPU[0]
        d_save = d_load = f"n/a ({no_docker})" if no_docker else ""
        if not no_docker:
            subprocess.run(
                ["docker", "load", "-q", "-i", str(work / "g.tar")], check=True, capture_output=True
            )
            d_save = f"{timed(['docker', 'save', '-o', str(work / 'd.tar'), 'bench/big:1'])[0]:.2f}"
            subprocess.run(["docker", "rmi", "-f", "bench/big:1"], check=True, capture_output=True)
            d_load = f"{timed(['docker', 'load', '-i', str(work / 'd.tar')])[0]:.2f}"
            subprocess.run(["docker", "rmi", "-f", "bench/big:1"], capture_output=True)
        row(
            f"save {SIZE_MB} MB",
            f"{g_save:.2f} ({g_save_cpu:.2f}, {g_save_rss:.0f})",
            f"{p_save:.2f} ({p_save_cpu:.2f})",
            d_save,
        )
        row(
            f"load {SIZE_MB} MB",
            f"{g_load:.2f} ({g_load_cpu:.2f}, {g_load_rss:.0f})",
            f"{p_load:.2f} ({p_load_cpu:.2f})",
            d_load,
        )
        for f in ("g.tar", "p.tar", "d.tar"):
            (work / f).unlink(missing_ok=True)
        shutil.rmtree(work / "g-root2", ignore_errors=True)
        subprocess.run([*podman, "rmi", "-a", "-f"], capture_output=True)

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
        p_imp, _ = timed([*podman, "import", str(tar_path), "rootfs:1"])
        p_imp_cpu = LAST_CPU[0]
        row(
            f"import {size} MB rootfs tar",
            f"{g_imp:.2f} ({g_imp_cpu:.2f}, {g_imp_rss:.0f})",
            f"{p_imp:.2f} ({p_imp_cpu:.2f})",
            "n/a (not measured)",
        )

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
        runs = []
        for _ in range(5):
            wall, rss = timed([*GANTRY, "images"], {"GANTRY_ROOT": str(many)})
            runs.append((wall, LAST_CPU[0], rss))
        wall, cpu, rss = sorted(runs)[2]
        row("images, 1,000 images (median of 5)", f"{wall:.2f} ({cpu:.2f}, {rss:.0f})", "", "")
    finally:
        subprocess.run([*podman, "rmi", "-a", "-f"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
