"""Layer create/extract throughput on /dev/shm: many small files and one large file.

Run: .venv/bin/python bench/bench_layers.py [--files N] [--big-mib M]
Compares with GNU tar on the same tree (tar -c --sort=name | gzip -1 / tar -x).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from gantry.layers import create, extract


def build(root: Path, files: int, big_mib: int) -> None:
    payload = os.urandom(2048)
    for i in range(files):
        d = root / f"d{i // 100:04d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        (d / f"f{i:06d}.py").write_bytes(payload[: 200 + i % 1800])
    if big_mib:
        with (root / "big.bin").open("wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(big_mib):
                f.write(chunk)


def timed(label: str, fn: object) -> object:
    assert callable(fn)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    print(
        f"{label:38s} {time.perf_counter() - t0:7.2f} s wall {time.process_time() - c0:7.2f} s cpu"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--big-mib", type=int, default=256)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-layers-", dir="/dev/shm"))
    try:
        src = base / "src"
        build(src, args.files, 0)
        for comp in ("gzip", "zstd", None):
            buf = io.BytesIO()
            timed(
                f"create {args.files} files {comp}",
                lambda buf=buf, comp=comp: create.create(src, buf, compression=comp),
            )
            buf.seek(0)
            out = base / f"out-{comp}"
            timed(
                f"extract {args.files} files {comp}",
                lambda buf=buf, out=out: extract.extract(buf, out),
            )
            shutil.rmtree(out)
        timed(
            "GNU tar -c | gzip -1 (small files)",
            lambda: subprocess.run(
                f"tar --sort=name -C {src} -cf - . | gzip -1 > {base}/g.tgz", shell=True, check=True
            ),
        )
        (base / "gx").mkdir()
        timed(
            "GNU tar -xzf (small files)",
            lambda: subprocess.run(
                ["tar", "-xzf", f"{base}/g.tgz", "-C", f"{base}/gx"], check=True
            ),
        )
        shutil.rmtree(src)
        if args.big_mib:
            src.mkdir()
            build(src, 0, args.big_mib)
            for comp in ("gzip", "zstd"):
                with (base / "big.layer").open("wb") as f:
                    timed(
                        f"create {args.big_mib} MiB random {comp}",
                        lambda f=f, comp=comp: create.create(src, f, compression=comp),
                    )
                with (base / "big.layer").open("rb") as f:
                    timed(
                        f"extract {args.big_mib} MiB random {comp}",
                        lambda f=f: extract.extract(f, base / "bigout"),
                    )
                shutil.rmtree(base / "bigout")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
