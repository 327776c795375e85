"""The build memo: a no-change rebuild answered without solving the Dockerfile again.

BuildKit answers a rebuild from a warm daemon that still holds the solved graph; gantry
starts cold every time, so a successful build writes down what it learned, under the
digest of its exact inputs (Dockerfile bytes, every option but the tags, the ignore file,
the frontend's own source files): the image it made, the base images it resolved, the
build-cache records it used, a signature of the build context and its progress
vertices. A later build with the same inputs is answered from that note when all it
relied on is verified unchanged:

- every image name the build (and its checks) resolved still names the same image;
- every cache record is still there with the same layer, chain and time, and its
  snapshot too (``builder prune``, or a ``--no-cache`` build that replaced a record,
  sends the build to the solver);
- the context, walked again with the same ignore file, has the same entries with the
  same type, mode, owner, size, device, inode, mtime and ctime -- the rule the file-hash
  stat cache (:class:`gantry.build.sources.HashCache`) already trusts for contents;
- the image is still in the store.

Any doubt is a miss, and the solver runs (and writes a new note). When only the context
changed, what the note proves still helps: the build checks found nothing for these
inputs (so they are not run again) and the context walk is handed over.
Not memoized: ``--pull``, ``--build-context``, ``--squash``, ``ADD <url>``, a context
with symlinks, a build whose checks had findings.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gantry.build.options import BuildOptions, BuildResult
from gantry.errors import GantryError

if TYPE_CHECKING:
    from gantry.build.progress import Progress
    from gantry.store import Store

#: bump when what a note holds or means changes (2: secrets key by ID, never by value)
FORMAT = 2
#: notes kept per store (the oldest go first)
KEEP = 256

_SRC = Path(__file__).resolve().parent.parent


@dataclass(slots=True)
class Recorder:
    """What a build relied on, collected while it runs (thread-safe enough: appends)."""

    usable: bool = True
    #: image name -> image ID it resolved to ("" when it did not resolve)
    images: dict[str, str] = field(default_factory=dict)
    #: cache keys looked up or written, in order
    keys: list[str] = field(default_factory=list)
    #: signature of the walked build context; None when the context was not walked
    context: str | None = None
    #: progress vertices of the steps: (kind, name), kind "step" (cached on replay) or "from"
    vertices: list[tuple[str, str]] = field(default_factory=list)

    def refuse(self) -> None:
        self.usable = False


@dataclass(slots=True)
class Lookup:
    """What a note tells about a build before it runs."""

    #: the whole answer, when every check passed
    result: BuildResult | None = None
    #: the build checks found nothing for exactly these inputs and images
    lint_clean: bool = False
    #: the image names the note relied on, verified to resolve as they did
    images: dict[str, str] = field(default_factory=dict)
    #: the context as walked for the check: rel path -> lstat
    entries: dict[str, os.stat_result] | None = None
    #: :func:`context_signature` of ``entries`` (set with them; the builder reuses it)
    signature: str | None = None
    #: with ``result``: the cache keys it stands on and the vertices to show
    keys: list[str] = field(default_factory=list)
    vertices: list[tuple[str, str]] = field(default_factory=list)


# ------------------------------------------------------------------ inputs


def dockerfile_bytes(opts: BuildOptions) -> bytes | None:
    if opts.dockerfile_text is not None:
        return opts.dockerfile_text
    path = opts.dockerfile or (opts.context / "Dockerfile")
    try:
        return path.read_bytes()
    except OSError:
        return None


def eligible(opts: BuildOptions) -> bool:
    """Whether a build with these options may be answered or recorded at all."""
    return not (opts.pull or opts.build_contexts or opts.squash)


def _frontend() -> list[object]:
    """The builder's own code: a changed gantry never trusts an older note."""
    import gantry

    out: list[object] = [gantry.__version__]
    for sub in ("build", "dockerfile", "dockerfile/rules"):
        try:
            with os.scandir(_SRC / sub) as it:
                for e in it:
                    if e.name.endswith(".py"):
                        st = e.stat()
                        out.append([sub, e.name, st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([sub, None])
    out.sort(key=str)
    return out


def _ignore_file(opts: BuildOptions) -> list[object]:
    from gantry.dockerfile.context import find_dockerignore

    path = find_dockerignore(opts.context, opts.dockerfile)
    if path is None:
        return [None]
    try:
        return [str(path), hashlib.sha256(path.read_bytes()).hexdigest()]
    except OSError:
        return [str(path), None]


def inputs_key(opts: BuildOptions, text: bytes) -> str:
    """The digest of everything a build is asked, tags and ``no_cache`` aside.

    Secrets count by ID only, never by value: the digest names a file in the store, and
    any function of a secret's value there could be tested offline against guesses. A
    new value cannot change the result either -- it never keys a step (as in BuildKit),
    so the solver would answer the same build from its cache.
    """
    parts = [
        "gantry-build-memo",
        FORMAT,
        _frontend(),
        os.path.abspath(opts.context),
        None if opts.dockerfile is None else os.path.abspath(opts.dockerfile),
        opts.dockerfile_text is not None,
        hashlib.sha256(text).hexdigest(),
        sorted(opts.build_args.items()),
        opts.target,
        sorted(opts.labels.items()),
        opts.network,
        opts.source_date_epoch,
        opts.lint,
        sorted(opts.secrets),
        sorted(opts.ssh.items()),
        _ignore_file(opts),
    ]
    data = json.dumps(parts, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def context_signature(root: Path, entries: Iterable[tuple[str, os.stat_result]]) -> str | None:
    """A digest of the walked context's stats; None when it holds a symlink (what one
    points at is followed by COPY and is not in the walk)."""
    h = hashlib.sha256()
    top = os.stat(root)
    h.update(f"{top.st_mode} {top.st_uid} {top.st_gid}\n".encode())
    for rel, s in entries:
        mode = s.st_mode
        if stat.S_ISLNK(mode):
            return None
        h.update(
            f"{rel}\0{mode} {s.st_uid} {s.st_gid} {s.st_size} {s.st_dev} {s.st_ino} "
            f"{s.st_mtime_ns} {s.st_ctime_ns} {s.st_rdev}\n".encode("utf-8", "surrogateescape")
        )
    return h.hexdigest()


def walk(opts: BuildOptions) -> dict[str, os.stat_result]:
    """The build context as :meth:`ContextIndex.walk` sees it."""
    from gantry.dockerfile.context import context_matcher, find_dockerignore, walk_context

    matcher = None
    if find_dockerignore(opts.context, opts.dockerfile) is not None:
        matcher = context_matcher(opts.context, opts.dockerfile)
    return {e.relpath: e.stat for e in walk_context(opts.context, matcher)}


def _dir(store: Store) -> Path:
    return store.root / "build" / "memo"


# ------------------------------------------------------------------ answering


def lookup(store: Store, opts: BuildOptions) -> Lookup:
    """Check the note for these inputs; see the module docstring."""
    miss = Lookup()
    if not eligible(opts):
        return miss
    text = dockerfile_bytes(opts)
    if text is None:
        return miss
    try:
        with open(_dir(store) / _note_name(opts, text), encoding="utf-8") as f:
            note = json.load(f)
        if not isinstance(note, dict) or note.get("format") != FORMAT:
            return miss
        return _verify(store, opts, note)
    except (OSError, ValueError, KeyError, TypeError, GantryError):
        return miss


def _verify(store: Store, opts: BuildOptions, note: dict[str, object]) -> Lookup:
    miss = Lookup()
    images = note["images"]
    assert isinstance(images, dict)
    for name, want in images.items():
        try:
            got = str(store.resolve(name).id)
        except GantryError:
            got = ""
        if got != want:
            return miss
    known = Lookup(lint_clean=bool(note["lint_clean"]), images=dict(images))
    if opts.no_cache:
        return known
    records = note["records"]
    assert isinstance(records, list)
    for key, chain, layer, created in records:
        rec = store.get_cache_record(key)
        if rec is None or rec.created != created:
            return known
        if _str(rec.chain_id) != chain or _str(rec.layer_digest) != layer:
            return known
        if chain is not None:
            try:
                store.snapshot_info(chain)
            except GantryError:
                return known
    try:
        image = store.image(str(note["image"]))
    except GantryError:
        return known
    if note["context"] is not None:
        known.entries = walk(opts)
        known.signature = context_signature(opts.context, known.entries.items())
        if known.signature != note["context"]:
            return known
    unconsumed = note["unconsumed"]
    vertices = note["vertices"]
    assert isinstance(unconsumed, list) and isinstance(vertices, list)
    steps = sum(1 for kind, _ in vertices if kind == "step")
    known.result = BuildResult(image, steps, steps, [], [str(u) for u in unconsumed])
    known.vertices = [(str(k), str(n)) for k, n in vertices]
    known.keys = [str(r[0]) for r in records]
    return known


def answer(store: Store, opts: BuildOptions, progress: Progress | None) -> Lookup:
    """:func:`lookup`, and on a hit do what the build would have done: tag the image,
    count the cache hits, show the steps as cached."""
    found = lookup(store, opts)
    result = found.result
    if result is None:
        return found
    store.mark_cache_used(found.keys)
    for tag in opts.tags:
        store.tag(result.image, tag)
    result.image = store.image(str(result.image.id))
    if progress is not None:
        for kind, name in found.vertices:
            n = progress.vertex(name)
            if kind == "step":
                progress.cached(n)
            else:
                progress.done(n)
        n = progress.vertex("exporting to image")
        progress.info(n, f"writing image {result.image.id} done")
        for tag in opts.tags:
            progress.info(n, f"naming to {full_name(tag)} done")
        progress.done(n)
    return found


def full_name(ref: str) -> str:
    """``docker.io/library/app:latest`` for ``app`` (the ref itself when it does not parse)."""
    from gantry.errors import InvalidReference
    from gantry.reference import parse_docker_ref

    try:
        return str(parse_docker_ref(ref))
    except InvalidReference:
        return ref


# ------------------------------------------------------------------ recording


def save(store: Store, opts: BuildOptions, text: bytes, rec: Recorder, result: BuildResult) -> None:
    """Write the note for a successful build (nothing when it cannot be trusted later)."""
    if not rec.usable or not eligible(opts) or result.warnings:
        return
    records: list[list[object]] = []
    for key in dict.fromkeys(rec.keys):
        r = store.get_cache_record(key)
        if r is None:
            return
        records.append([key, _str(r.chain_id), _str(r.layer_digest), r.created])
    note = {
        "format": FORMAT,
        "image": str(result.image.id),
        "images": rec.images,
        "records": records,
        "context": rec.context,
        "vertices": rec.vertices,
        "unconsumed": list(result.unconsumed_args),
        "lint_clean": opts.lint,
        "written": time.time(),
    }
    d = _dir(store)
    d.mkdir(parents=True, exist_ok=True)
    path = d / _note_name(opts, text)
    tmp = d / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(note, f, separators=(",", ":"))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _trim(d)


def _note_name(opts: BuildOptions, text: bytes) -> str:
    return f"v{FORMAT}-{inputs_key(opts, text)}.json"


def _trim(d: Path) -> None:
    """Keep the newest :data:`KEEP` notes; drop every note of an older format (format 1
    named notes after a digest that folded in a hash of each secret's value)."""
    current = f"v{FORMAT}-"
    notes = []
    with os.scandir(d) as it:
        for e in it:
            if not e.name.endswith(".json"):
                continue
            if e.name.startswith(current):
                notes.append((e.stat().st_mtime_ns, e.path))
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(e.path)
    if len(notes) <= KEEP:
        return
    notes.sort()
    for _, p in notes[: len(notes) - KEEP]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)


def _str(value: object) -> str | None:
    return None if value is None else str(value)
