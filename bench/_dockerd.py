"""Docker as a client in the benches: a private dockerd and timed push/pull.

The daemon is the one the tests use (tests/dockerd.py: its own containerd, data root on
/dev/shm, host network untouched, stopped by PID and unmounted on exit).

Fair numbers need care, because dockerd remembers where it has seen each layer:

* a pull must find no layer locally: :func:`forget` removes the images (and with them
  the layers) after each measurement;
* a push must not be able to mount layers from another repository of the same
  registry, nor skip them: :func:`push_mb_s` pushes to a registry dockerd has never
  pulled from (a fresh server on a fresh port).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from dockerd import Docker, DockerMissing, dockerd, need_docker

__all__ = ["Docker", "available", "dockerd", "forget", "pull_mb_s", "push_mb_s", "version"]


def available() -> bool:
    """dockerd, containerd and the docker client are all installed."""
    try:
        need_docker()
    except DockerMissing:
        return False
    return True


def _timed(docker: Docker, *args: str, unfair: tuple[str, ...]) -> float:
    """Seconds ``docker ARGS`` takes; raises if its output shows a layer it did not move."""
    t = time.perf_counter()
    out = docker.run(*args, timeout=3600).stdout
    seconds = time.perf_counter() - t
    for words in unfair:
        if words in out:
            raise RuntimeError(f"docker {' '.join(args)}: '{words}', not a fair measure:\n{out}")
    return seconds


def pull_mb_s(docker: Docker, ref: str, size: int) -> float:
    """``docker pull REF`` of an image of ``size`` bytes (compressed), MB/s."""
    return size / _timed(docker, "pull", ref, unfair=("Already exists",)) / 1e6


def push_mb_s(docker: Docker, ref: str, dest: str, size: int) -> float:
    """``docker tag REF DEST`` then ``docker push DEST``, MB/s; DEST's registry must be new
    to this daemon (see the module's note)."""
    docker.run("tag", ref, dest)
    seconds = _timed(docker, "push", dest, unfair=("Mounted from", "Layer already exists"))
    return size / seconds / 1e6


def forget(docker: Docker, *refs: str) -> None:
    """Remove the images (their layers go with them) so the next pull downloads all."""
    docker.run("rmi", "-f", *refs, check=False)
    docker.run("image", "prune", "-f", check=False)


def version(docker: Docker) -> str:
    p = docker.run("version", "--format", "{{.Server.Version}}", check=False)
    return p.stdout.strip() or "?"
