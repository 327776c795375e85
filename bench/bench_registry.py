"""gantry's registry against Debian's docker-registry (distribution 2.8), same run, same client.

* push and pull of a ~1 GB image with 5 incompressible gzip layers, with skopeo
  (``oci:`` layout on tmpfs <-> ``docker://127.0.0.1``), MB/s, median of the reps;
  every rep uses fresh servers on fresh ports and fresh data so that nothing is
  mounted or skipped;
* the server side alone: one layer PUT (monolithic) and GET by curl;
* Docker as the client (when docker.io is installed; ``--no-docker`` to leave it out):
  a private dockerd (bench/_dockerd.py) pulls the image skopeo pushed, then pushes it
  to a second fresh server of the same kind (so it can neither mount nor skip a layer);
  MB/s over the compressed image size; docker recompresses layers as it pushes;
* manifest HEAD and GET requests per second with 32 keep-alive connections: a
  small asyncio raw-socket client (wrk cannot send HEAD), plus GET with ``wrk``
  when installed (``apt-get install wrk``). On 2 shared cores the Python client
  competes with the server: compare the ratio, not the absolute numbers.

Both servers keep their data on /dev/shm and log nothing per request. Prints a
table with gantry/distribution ratios (> 1: gantry faster). Beside each transfer's
MB/s it prints the CPU seconds the server process spent per GB moved (from
/proc/PID/stat; ratio < 1: gantry cheaper): on 2 shared cores wall time swings with
the neighbours' load, CPU time much less.

    .venv/bin/python bench/bench_registry.py [--size-mb 1024] [--reps 2] [--seconds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _dockerd

PROJECT = Path(__file__).resolve().parent.parent
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layout(root: Path, size_mb: int, layers: int) -> None:
    """An OCI layout with ``layers`` gzip layers of random data (~``size_mb`` in all)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    per = size_mb * (1 << 20) // layers
    descs, diff_ids = [], []
    for i in range(layers):
        tmp = root / f"layer{i}.tar.gz"
        diff_ids.append(_write_layer(tmp, f"data{i}", per))
        h = hashlib.sha256()
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        digest = "sha256:" + h.hexdigest()
        tmp.rename(blobs / digest.split(":")[1])
        descs.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest,
                "size": (blobs / digest.split(":")[1]).stat().st_size,
            }
        )
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    (blobs / sha(config).split(":")[1]).write_bytes(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": descs,
        }
    ).encode()
    (blobs / sha(manifest).split(":")[1]).write_bytes(manifest)
    (root / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": sha(manifest),
                        "size": len(manifest),
                        "annotations": {"org.opencontainers.image.ref.name": "latest"},
                    }
                ],
            }
        )
    )
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


def _write_layer(path: Path, member: str, size: int) -> str:
    """A gzip tar layer holding ``size`` random bytes; returns its diffID."""
    from isal import igzip

    gzip_file: Any = igzip.IGzipFile  # untyped in isal
    raw_hash = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(path, "wb"))
        gz = stack.enter_context(gzip_file(fileobj=out, mode="wb", compresslevel=1, mtime=0))
        tee: Any = _Tee(gz, raw_hash)  # tarfile only calls write()
        tf = stack.enter_context(tarfile.open(fileobj=tee, mode="w|", format=tarfile.PAX_FORMAT))
        ti = tarfile.TarInfo(member)
        ti.size = size
        r, w = os.pipe()
        feeder = threading.Thread(target=_feed, args=(w, size))
        feeder.start()
        with os.fdopen(r, "rb") as src:
            tf.addfile(ti, src)
        feeder.join()
    return "sha256:" + raw_hash.hexdigest()


class _Tee:
    """Writes through to ``out`` and hashes what passes (the layer's diffID)."""

    def __init__(self, out: Any, h: Any) -> None:
        self.out = out
        self.h = h

    def write(self, b: bytes) -> int:
        self.h.update(b)
        n: int = self.out.write(b)
        return n


def _feed(fd: int, n: int) -> None:
    with os.fdopen(fd, "wb") as w:
        while n > 0:
            chunk = os.urandom(min(n, 1 << 20))
            w.write(chunk)
            n -= len(chunk)


#: server address -> its process ID, for CPU accounting
PIDS: dict[str, int] = {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server_cpu(addr: str, size: int, into: dict[str, list[float]], label: str) -> Iterator[None]:
    """Record the CPU seconds per GB the server at ``addr`` spends in the block."""
    pid = PIDS[addr]
    before = cpu_seconds(pid)
    yield
    into.setdefault(f"  server CPU-s/GB {label}", []).append(
        (cpu_seconds(pid) - before) / (size / 1e9)
    )


def layout_size(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "blobs").rglob("*") if p.is_file())


@contextlib.contextmanager
def server(kind: str, work: Path) -> Iterator[str]:
    port = free_port()
    data = work / f"{kind}-data-{port}"
    log = open(work / f"{kind}-{port}.log", "wb")  # noqa: SIM115 - closed below
    if kind == "gantry":
        cmd = [
            sys.executable,
            "-m",
            "gantry",
            "--root",
            str(work / "root"),
            "registry",
            "serve",
            "--addr",
            f"127.0.0.1:{port}",
            "--data",
            str(data),
            "--quiet",
        ]
    else:
        conf = work / f"distribution-{port}.yml"
        conf.write_text(
            json.dumps(
                {
                    "version": 0.1,
                    "log": {"level": "error", "accesslog": {"disabled": True}},
                    "storage": {
                        "filesystem": {"rootdirectory": str(data)},
                        "delete": {"enabled": True},
                        "cache": {"blobdescriptor": "inmemory"},
                    },
                    "http": {"addr": f"127.0.0.1:{port}"},
                }
            )
        )
        cmd = ["docker-registry", "serve", str(conf)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=PROJECT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not start; see {log.name}") from None
                time.sleep(0.05)
        PIDS[f"127.0.0.1:{port}"] = proc.pid
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def curl_blob(addr: str, blob: Path, digest: str) -> tuple[float, float]:
    """Server-side blob throughput without skopeo in the way: (PUT MB/s, GET MB/s) by curl."""
    p = subprocess.run(
        ["curl", "-s", "-i", "-X", "POST", f"http://{addr}/v2/curl/blobs/uploads/"],
        capture_output=True,
        text=True,
        check=True,
    )
    m = re.search(r"(?im)^location:\s*(\S+)", p.stdout)
    if not m:
        raise RuntimeError(f"no Location from {addr}: {p.stdout[:200]}")
    loc = m.group(1)
    if loc.startswith("/"):
        loc = f"http://{addr}{loc}"
    loc += ("&" if "?" in loc else "?") + f"digest={digest}"
    put = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{speed_upload}",
            "-T",
            str(blob),
            "-H",
            "Content-Type: application/octet-stream",
            loc,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    get = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{speed_download}",
            f"http://{addr}/v2/curl/blobs/{digest}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if put[0] != "201" or get[0] != "200":
        raise RuntimeError(f"curl blob PUT {put[0]} / GET {get[0]} on {addr}")
    return float(put[1]) / 1e6, float(get[1]) / 1e6


def skopeo(*args: str) -> float:
    t = time.perf_counter()
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"skopeo {' '.join(args)}: {p.stderr}")
    return time.perf_counter() - t


def wrk_rps(url: str, method: str, seconds: int, work: Path) -> float:
    script = work / f"{method}.lua"
    script.write_text(f'wrk.method = "{method}"\nwrk.headers["Accept"] = "{ACCEPT}"\n')
    p = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
    )
    m = re.search(r"Requests/sec:\s*([\d.]+)", p.stdout)
    if not m:
        raise RuntimeError(f"wrk: {p.stdout}{p.stderr}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", p.stdout)
    if non2xx:
        raise RuntimeError(f"wrk saw {non2xx.group(1)} error responses from {url}")
    return float(m.group(1))


def aio_rps(url: str, method: str, seconds: int, conns: int = 32) -> float:
    """Load generator for HEAD (wrk cannot do HEAD) and GET: asyncio over raw sockets,
    ``conns`` keep-alive connections, one request in flight on each."""
    import asyncio

    host_port, path = url.split("//", 1)[1].split("/", 1)
    host, port = host_port.split(":")
    req = (f"{method} /{path} HTTP/1.1\r\nHost: {host_port}\r\nAccept: {ACCEPT}\r\n\r\n").encode()

    async def worker(stop: float) -> int:
        reader, writer = await asyncio.open_connection(host, int(port))
        n = 0
        while time.monotonic() < stop:
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{method} {url}: {head[:40]!r}")
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if method != "HEAD" and m:
                await reader.readexactly(int(m.group(1)))
            n += 1
        writer.close()
        return n

    async def run() -> float:
        t = time.perf_counter()
        stop = time.monotonic() + seconds
        counts = await asyncio.gather(*(worker(stop) for _ in range(conns)))
        return sum(counts) / (time.perf_counter() - t)

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    ap.add_argument("--no-docker", action="store_true", help="leave out the docker rows")
    args = ap.parse_args()
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (make setup)")
    work = Path(tempfile.mkdtemp(prefix="gantry-bench-registry-", dir=args.dir))
    daemons = contextlib.ExitStack()
    try:
        dk = None
        if not args.no_docker and _dockerd.available():
            dk = daemons.enter_context(_dockerd.dockerd())
        elif not args.no_docker:
            print("docker.io is not installed: no docker rows (make setup)")
        src = work / "image"
        t = time.perf_counter()
        make_layout(src, args.size_mb, args.layers)
        size = layout_size(src)
        print(
            f"image: {size / 1e6:.0f} MB in {args.layers} layers (built in {time.perf_counter() - t:.1f}s), work dir {work}"
        )
        results: dict[str, dict[str, list[float]]] = {"gantry": {}, "distribution": {}}
        for rep in range(args.reps):
            for kind in ("gantry", "distribution") if rep % 2 == 0 else ("distribution", "gantry"):
                with server(kind, work) as addr:
                    dest = f"docker://{addr}/bench/img:latest"
                    r = results[kind]
                    with server_cpu(addr, size, r, "skopeo push"):
                        push = skopeo("copy", "--dest-tls-verify=false", f"oci:{src}:latest", dest)
                    pulled = work / f"pull-{kind}-{rep}"
                    with server_cpu(addr, size, r, "skopeo pull"):
                        pull = skopeo("copy", "--src-tls-verify=false", dest, f"oci:{pulled}:x")
                    shutil.rmtree(pulled)
                    r.setdefault("skopeo push MB/s", []).append(size / push / 1e6)
                    r.setdefault("skopeo pull MB/s", []).append(size / pull / 1e6)
                    if shutil.which("curl"):
                        layer = max(
                            (src / "blobs" / "sha256").iterdir(), key=lambda q: q.stat().st_size
                        )
                        put_mbs, get_mbs = curl_blob(addr, layer, "sha256:" + layer.name)
                        r.setdefault("curl blob PUT MB/s (1 layer)", []).append(put_mbs)
                        r.setdefault("curl blob GET MB/s (1 layer)", []).append(get_mbs)
                    url = f"http://{addr}/v2/bench/img/manifests/latest"
                    for method in ("HEAD", "GET"):
                        rps = aio_rps(url, method, args.seconds)
                        r.setdefault(f"manifest {method} req/s (asyncio)", []).append(rps)
                    if shutil.which("wrk"):
                        rps = wrk_rps(url, "GET", args.seconds, work)
                        r.setdefault("manifest GET req/s (wrk)", []).append(rps)
                    if dk is not None:
                        ref = f"{addr}/bench/img:latest"
                        with server_cpu(addr, size, r, "docker pull"):
                            mbs = _dockerd.pull_mb_s(dk, ref, size)
                        r.setdefault("docker pull MB/s", []).append(mbs)
                        with server(kind, work) as fresh:
                            dest = f"{fresh}/bench/docker:latest"
                            with server_cpu(fresh, size, r, "docker push"):
                                mbs = _dockerd.push_mb_s(dk, ref, dest, size)
                            r.setdefault("docker push MB/s", []).append(mbs)
                        _dockerd.forget(dk, ref, dest)
                    print(
                        f"rep {rep + 1} {kind}: "
                        + ", ".join(
                            f"{k.strip()} {v[-1]:.{2 if 'CPU' in k else 0}f}" for k, v in r.items()
                        ),
                        flush=True,
                    )
        print()
        print(
            f"skopeo {_version(['skopeo', '--version'])}; manifest load: 32 keep-alive connections "
            f"(asyncio client in this process; wrk -t2 for GET when installed); medians of {args.reps}"
        )
        if dk is not None:
            print(f"docker: dockerd {_dockerd.version(dk)} (data root on /dev/shm), CLI 28")
        print(f"{'metric':<34} {'gantry':>10} {'distribution':>13} {'ratio':>7}")
        for metric in sorted(results["gantry"], key=_row_order):
            g = statistics.median(results["gantry"][metric])
            d = statistics.median(results["distribution"][metric])
            digits = 2 if "CPU" in metric else 0
            print(f"{metric:<34} {g:>10.{digits}f} {d:>13.{digits}f} {g / d:>7.2f}")
    finally:
        daemons.close()
        shutil.rmtree(work, ignore_errors=True)


def _row_order(metric: str) -> tuple[int, int]:
    """Transfers first, each followed by its server CPU row, then the request rates."""
    order = ["skopeo push", "skopeo pull", "curl blob PUT", "curl blob GET"]
    order += ["docker pull", "docker push", "manifest HEAD", "manifest GET"]
    for i, name in enumerate(order):
        if name in metric:
            return i, "CPU" in metric
    return len(order), 0


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().split()[-1]
    except (OSError, IndexError):
        return "?"


if __name__ == "__main__":
    main()
