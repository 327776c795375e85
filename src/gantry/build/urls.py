"""ADD from an HTTP(S) URL, as BuildKit's HTTP source and Dockerfile frontend do it.

- the file is named after the last element of the URL's path (``__unnamed__`` when
  there is none); ``ADD URL /dir/`` puts it in the directory, ``ADD URL /file`` names it;
- it is written with mode 0600 (``--chmod`` changes that) and never unpacked;
- its mtime is the response's ``Last-Modified`` when it parses as an HTTP date (the
  download time otherwise, which ``SOURCE_DATE_EPOCH`` clamps like every new file);
- ``--checksum=sha256:...`` must match the content (``digest mismatch``); with it the
  step's cache key is the checksum, so a cached step does not download again. Without
  it the file is fetched on every build and its content digest keys the step, so a
  changed file at the same URL misses.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import time
import urllib.parse
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from gantry.errors import BuildError

_CHUNK = 1 << 20
USER_AGENT = "gantry-build"


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def is_git(source: str) -> bool:
    return source.startswith("git@") or source.startswith("git://") or ".git#" in source


def url_filename(url: str) -> str:
    """The name BuildKit gives a downloaded file: the URL path's last element."""
    path = urllib.parse.urlsplit(url).path
    base = posixpath.basename(path.rstrip("/")) if path.rstrip("/") else ""
    if not base or base in (".", "/"):
        return "__unnamed__"
    return urllib.parse.unquote(base)


@dataclass(frozen=True)
class Fetched:
    url: str
    path: Path
    filename: str
    digest: str
    #: Last-Modified (epoch seconds), None when absent or not a date
    last_modified: float | None


def _last_modified(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def fetch(url: str, directory: Path, *, checksum: str | None = None) -> Fetched:
    """Download ``url`` into ``directory`` (mode 0600, Last-Modified as mtime)."""
    import urllib.error
    import urllib.request

    filename = url_filename(url)
    target = directory / f"{len(os.listdir(directory))}-{filename}"
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := resp.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
            modified = _last_modified(resp.headers.get("Last-Modified"))
    except urllib.error.HTTPError as exc:
        raise BuildError(f"failed to load {url}: invalid response status {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BuildError(f"failed to load {url}: {reason}") from None
    digest = "sha256:" + h.hexdigest()
    if checksum is not None and checksum != digest:
        raise BuildError(f"digest mismatch {checksum}: {digest}")
    os.chmod(target, 0o600)
    stamp = modified if modified is not None else time.time()
    os.utime(target, (stamp, stamp))
    return Fetched(url, target, filename, digest, modified)


def check_checksum(value: str) -> str:
    """``--checksum`` must be a sha256 digest here (what BuildKit's HTTP source verifies)."""
    algo, _, hexpart = value.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise BuildError(f"invalid checksum digest format: {value}")
    return value
