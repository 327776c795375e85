"""Pull and push of a 5-layer image: gantry vs ``skopeo copy`` vs podman, on distribution.

Rows (seconds, wall clock, MB/s of blob bytes; peak RSS of the gantry process in MB):
  * push of BENCH_SIZE_MB (default 1024) incompressible bytes in 5 gzip layers to a fresh
    repository of Debian's docker-registry on 127.0.0.1: gantry push, skopeo copy
    oci: -> docker://, podman push;
  * pull of the same: gantry pull into an empty store, skopeo copy docker:// -> oci:,
    podman pull into an empty private root;
  * pull again with every layer present (gantry: manifest requests only);
  * docker pull / push through a private dockerd (bench/_dockerd.py: its own containerd,
    data root on /dev/shm, no bridge or iptables; the registry is on 127.0.0.1, insecure
    to Docker, and named in --insecure-registry too). The push goes to a second, fresh
    registry so dockerd can neither mount nor skip a layer. BENCH_DOCKER=0 skips them;
    without docker.io the rows say n/a and why.
Everything lives on /dev/shm. Fresh repository names per tool (peers mount otherwise, notes
gotcha 5). Compare tools by ratios within one run: the machine is shared.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import _dockerd  # bench/_dockerd.py: this script's directory is on sys.path

from gantry.store import Store
from test_distribution_support import distribution, image_blobs

SIZE_MB = int(os.environ.get("BENCH_SIZE_MB", "1024"))
DATA = os.environ.get("BENCH_DATA", "random")


def gzip_layer(path: Path, size: int, seed: int) -> bytes:
    """A gzip (level 1) tar layer of one file; returns its bytes. The file is
    incompressible, or hex text (compresses ~2:1, so unpacking does real work) with
    BENCH_DATA=text."""
    import io
    import tarfile

    rng = random.Random(seed)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo(f"data{seed}.bin")
        ti.size = size
        data = rng.randbytes(size // 2).hex().encode() if DATA == "text" else rng.randbytes(size)
        tf.addfile(ti, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), compresslevel=1, mtime=0)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:3]}: {p.stderr[-500:]}")
    return time.perf_counter() - t


def gantry(root: Path, *args: str) -> tuple[float, float]:
    """(seconds, peak RSS MB) of one gantry command.

    The peak is read from /proc (VmHWM) just before the process exits: rusage's maxrss
    of a child starts at the forking parent's size on Linux, which would hide ours.
    """
    code = (
        "import atexit, sys\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            sys.stderr.write('HWM ' + line.split()[1] + '\\n')\n"
        "atexit.register(hwm)\n"
        "from gantry.cli.main import main\n"
        "sys.argv[0] = 'gantry'\n"
        "main()\n"
    )
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", code, "--root", str(root), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-500:])
    kb = [int(line.split()[1]) for line in p.stderr.splitlines() if line.startswith("HWM ")]
    return wall, (kb[-1] / 1024 if kb else float("nan"))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-pp-", dir="/dev/shm"))
    try:
        run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path) -> None:
    per = SIZE_MB * 1024 * 1024 // 5
    layers = [gzip_layer(work, per, i) for i in range(5)]
    total = sum(len(b) for b in layers) / 1e6
    rows: list[tuple[str, str, float, str]] = []
    with distribution(work) as addr:
        src_root = work / "src"
        with Store(src_root) as src:
            config, body, m = image_blobs(layers)
            src.content.write(config)
            for b in layers:
                src.content.write(b)
            src.add_image(body, media_type=m.media_type, tags=[f"{addr}/g/img:1"])
        del layers
        # an OCI layout of the same image for skopeo/podman
        oci = work / "oci"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gantry",
                "--root",
                str(src_root),
                "save",
                "-o",
                str(work / "img.tar"),
                f"{addr}/g/img:1",
            ],
            check=True,
        )
        (oci).mkdir()
        subprocess.run(["tar", "-xf", str(work / "img.tar"), "-C", str(oci)], check=True)
        os.unlink(work / "img.tar")

        wall, rss = gantry(src_root, "push", "-q", f"{addr}/g/img:1")
        rows.append(("push", "gantry", wall, f"{rss:.0f}"))
        wall = timed(
            [
                "skopeo",
                "copy",
                "-q",
                "--dest-tls-verify=false",
                f"oci:{oci}",
                f"docker://{addr}/s/img:1",
            ]
        )
        rows.append(("push", "skopeo copy", wall, ""))

        dst = work / "dst"
        wall, rss = gantry(dst, "pull", "-q", f"{addr}/g/img:1")
        rows.append(("pull", "gantry", wall, f"{rss:.0f}"))
        wall, rss = gantry(dst, "pull", "-q", f"{addr}/g/img:1")
        rows.append(("pull, layers present", "gantry", wall, f"{rss:.0f}"))
        shutil.rmtree(dst)
        out = work / "out"
        wall = timed(
            [
                "skopeo",
                "copy",
                "-q",
                "--src-tls-verify=false",
                f"docker://{addr}/g/img:1",
                f"oci:{out}:x",
            ]
        )
        rows.append(("pull", "skopeo copy", wall, ""))
        shutil.rmtree(out)
        # the same two moves without a store on either side: gantry image copy vs skopeo
        wall, rss = gantry(dst, "image", "copy", "-q", f"{addr}/g/img:1", f"oci:{out}:x")
        rows.append(("copy registry -> oci:", "gantry image copy", wall, f"{rss:.0f}"))
        shutil.rmtree(out)
        wall = timed(
            [
                "skopeo",
                "copy",
                "-q",
                "--src-tls-verify=false",
                f"docker://{addr}/g/img:1",
                f"oci:{out}:x",
            ]
        )
        rows.append(("copy registry -> oci:", "skopeo copy", wall, ""))
        shutil.rmtree(out)
        wall, rss = gantry(dst, "image", "copy", "-q", f"oci:{oci}", f"{addr}/c/img:1")
        rows.append(("copy oci: -> registry", "gantry image copy", wall, f"{rss:.0f}"))
        # (skopeo copy oci: -> docker:// is the "push, skopeo copy" row)
        shutil.rmtree(dst, ignore_errors=True)
        if shutil.which("podman"):
            proot = Path(tempfile.mkdtemp(prefix="bp-", dir="/dev/shm"))
            pod = [
                "podman",
                "--root",
                str(proot / "r"),
                "--runroot",
                str(proot / "rr"),
                "--storage-driver",
                "vfs",
            ]
            try:
                rows.append(
                    (
                        "pull",
                        "podman",
                        timed([*pod, "pull", "-q", "--tls-verify=false", f"{addr}/g/img:1"]),
                        "",
                    )
                )
                # to a registry podman has not pulled from: its blob-info cache would
                # otherwise mount every layer and upload nothing (notes, gotcha 5)
                (work / "podman-push").mkdir()
                with distribution(work / "podman-push") as fresh:
                    cmd = [*pod, "push", "-q", "--tls-verify=false"]
                    wall = timed([*cmd, f"{addr}/g/img:1", f"{fresh}/p/img:1"])
                rows.append(("push", "podman", wall, ""))
            finally:
                subprocess.run([*pod, "rmi", "-a", "-f"], capture_output=True)
                shutil.rmtree(proot, ignore_errors=True)
        rows += docker_rows(addr, work, total)
    print(f"{total:.0f} MB ({DATA} data) in 5 layers, distribution on 127.0.0.1, /dev/shm")
    print("| row | tool | seconds | MB/s | peak RSS MB |\n|---|---|---:|---:|---:|")
    for row, tool, wall, rss in rows:
        if wall != wall:  # NaN: not measured, rss holds the reason
            print(f"| {row} | {tool} | n/a | n/a | {rss} |")
        else:
            print(f"| {row} | {tool} | {wall:.2f} | {total / wall:.0f} | {rss} |")


def docker_rows(addr: str, work: Path, total_mb: float) -> list[tuple[str, str, float, str]]:
    """docker pull and push of g/img:1 (seconds); n/a rows with the reason when dockerd
    cannot be used. Peak RSS is left empty: the work happens in the daemon."""
    why = None
    if os.environ.get("BENCH_DOCKER", "1") == "0":
        why = "BENCH_DOCKER=0"
    elif not _dockerd.available():
        why = "dockerd, containerd or docker not installed"
    if why is not None:
        return [("pull", "docker", float("nan"), why), ("push", "docker", float("nan"), why)]
    nan = float("nan")
    ref = f"{addr}/g/img:1"
    size = total_mb * 1e6
    try:
        with _dockerd.dockerd(insecure=[addr]) as dk:
            name = f"docker {_dockerd.version(dk)}"
            pull_s = size / _dockerd.pull_mb_s(dk, ref, int(size)) / 1e6
            # a registry this daemon has never seen: no mounts, no "already exists"
            (work / "docker-push").mkdir(exist_ok=True)
            with distribution(work / "docker-push") as fresh:
                push_s = size / _dockerd.push_mb_s(dk, ref, f"{fresh}/d/img:1", int(size)) / 1e6
            _dockerd.forget(dk, ref, f"{fresh}/d/img:1")
    except (RuntimeError, TimeoutError, OSError) as err:
        why = f"dockerd failed: {str(err).splitlines()[0][:80]}"
        return [("pull", "docker", nan, why), ("push", "docker", nan, why)]
    return [("pull", name, pull_s, ""), ("push", name, push_s, "")]


if __name__ == "__main__":
    main()
