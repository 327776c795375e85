"""The build memo (gantry.build.memo): a no-change rebuild answered without the solver,
and never an answer the solver would not give.

Each case warms the memo (two builds), checks that :func:`memo.lookup` would answer,
changes one input, and checks that the memo no longer answers and that the build does
what the solver does (re-runs what it must, or fails as it must).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gantry.build import memo
from gantry.build.builder import BuildOptions, BuildResult, build
from gantry.build.progress import Progress
from gantry.errors import BuildError
from gantry.store import Store
from test_build_support import add_busybox, gantry, need_root


class Seen(Progress):
    """Vertex names, and which were cached or ran."""

    def __init__(self) -> None:
        super().__init__()
        self.names: dict[int, str] = {}
        self.cached_steps: list[str] = []
        self.done_steps: list[str] = []

    def on_start(self, n: int, name: str) -> None:
        self.names[n] = name

    def on_cached(self, n: int) -> None:
        self.cached_steps.append(self.names[n])

    def on_done(self, n: int, seconds: float) -> None:
        self.done_steps.append(self.names[n])

    @property
    def ran(self) -> list[str]:
        return [n for n in self.done_steps if "] RUN" in n or "] COPY" in n]


DOCKERFILE = """\
FROM busybox
COPY a.txt /a.txt
RUN cat /a.txt >> /log
ARG X=1
RUN echo "$X" >> /log
"""


@pytest.fixture
def store(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_root()
    s = Store(root)
    add_busybox(s, tmp_path)
    yield s
    s.close()


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text(DOCKERFILE)
    (d / "a.txt").write_text("a\n")
    return d


def run(store: Store, ctx: Path, **kw: object) -> tuple[BuildResult, Seen]:
    seen = Seen()
    return build(store, BuildOptions(context=ctx, **kw), seen), seen  # type: ignore[arg-type]


def warm(store: Store, ctx: Path, **kw: object) -> BuildResult:
    """Build until the memo answers; returns the answer."""
    first, _ = run(store, ctx, **kw)
    assert memo.lookup(store, BuildOptions(context=ctx, **kw)).result is not None  # type: ignore[arg-type]
    second, seen = run(store, ctx, **kw)
    assert second.image.id == first.image.id
    assert seen.ran == [] and second.cached == second.steps == 3
    return second


def answers(store: Store, ctx: Path, **kw: object) -> bool:
    return memo.lookup(store, BuildOptions(context=ctx, **kw)).result is not None  # type: ignore[arg-type]


# ------------------------------------------------------------------ answering


def test_memo_answer_is_the_cached_build(store: Store, ctx: Path) -> None:
    first, seen1 = run(store, ctx, tags=["app:1"])
    assert len(seen1.ran) == 3
    full, seen2 = run(store, ctx, tags=["app:1"])  # the memo answers this one
    assert full.image.id == first.image.id
    assert seen2.cached_steps == [
        "[2/4] COPY a.txt /a.txt",
        "[3/4] RUN cat /a.txt >> /log",
        '[4/4] RUN echo "$X" >> /log',
    ]
    assert seen2.done_steps[0] == "[1/4] FROM docker.io/library/busybox:latest"
    assert seen2.done_steps[-1] == "exporting to image"
    # a tag given only now is applied by the answer, as the solver's commit would
    again, _ = run(store, ctx, tags=["app:2"])
    assert again.image.id == first.image.id
    assert store.resolve("app:2").id == first.image.id
    assert (full.steps, full.cached) == (3, 3)


def test_tag_moved_away_is_put_back_by_the_answer(store: Store, ctx: Path) -> None:
    first = warm(store, ctx, tags=["app:1"])
    store.tag(store.resolve("busybox:latest"), "app:1")
    again, _ = run(store, ctx, tags=["app:1"])
    assert again.image.id == first.image.id == store.resolve("app:1").id


# ------------------------------------------------------------------ every change misses


def _memo_files(store: Store) -> dict[str, bytes]:
    d = store.root / "build" / "memo"
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_secret_value_is_never_in_the_memo(store: Store, ctx: Path) -> None:
    import hashlib

    value, other = b"memo-secret-value-1", b"memo-secret-value-2"
    first = warm(store, ctx, secrets={"tok": value})
    notes = _memo_files(store)
    assert notes
    # a new value of the same secret: the same note answers, nothing is rewritten
    assert answers(store, ctx, secrets={"tok": other})
    again, seen = run(store, ctx, secrets={"tok": other})
    assert seen.ran == [] and again.image.id == first.image.id
    assert _memo_files(store) == notes
    # no function of the value we can think of is in a name or a note
    for v in (value, other):
        for digest in (hashlib.sha256(v).hexdigest(), hashlib.sha512(v).hexdigest()):
            for name, data in notes.items():
                assert digest not in name and digest.encode() not in data
        for data in notes.values():
            assert v not in data
    # the secret's ID is an input: another ID (or none) is another build
    assert not answers(store, ctx, secrets={"other": value})
    assert not answers(store, ctx)


def test_older_notes_are_dropped_when_a_note_is_written(store: Store, ctx: Path) -> None:
    # format 1 named a note after a digest folding in sha256 of each secret's value
    d = store.root / "build" / "memo"
    d.mkdir(parents=True)
    old = d / ("ab" * 32 + ".json")
    old.write_text('{"format":1}')
    run(store, ctx, secrets={"tok": b"v"})
    names = [p.name for p in d.iterdir()]
    assert old.name not in names and len(names) == 1 and names[0].startswith("v2-")


def test_changed_dockerfile_misses(store: Store, ctx: Path) -> None:
    first = warm(store, ctx)
    (ctx / "Dockerfile").write_text(DOCKERFILE + "# a comment\n")
    assert not answers(store, ctx)
    again, seen = run(store, ctx)
    assert seen.ran == [] and again.image.id == first.image.id  # the solver: all cached


def test_changed_build_arg_misses_and_reruns_from_its_use(store: Store, ctx: Path) -> None:
    first = warm(store, ctx)
    assert not answers(store, ctx, build_args={"X": "2"})
    again, seen = run(store, ctx, build_args={"X": "2"})
    assert seen.ran == ['[4/4] RUN echo "$X" >> /log']
    assert again.image.id != first.image.id


def test_changed_content_with_same_size_and_mtime_misses(store: Store, ctx: Path) -> None:
    first = warm(store, ctx)
    a = ctx / "a.txt"
    before = a.stat()
    a.write_text("b\n")
    os.utime(a, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert a.stat().st_size == before.st_size
    assert not answers(store, ctx)
    again, seen = run(store, ctx)
    assert seen.ran == [
        "[2/4] COPY a.txt /a.txt",
        "[3/4] RUN cat /a.txt >> /log",
        '[4/4] RUN echo "$X" >> /log',
    ]
    assert again.image.id != first.image.id


def test_new_dockerignore_misses(store: Store, ctx: Path) -> None:
    warm(store, ctx)
    (ctx / ".dockerignore").write_text("a.txt\n")
    assert not answers(store, ctx)
    with pytest.raises(BuildError, match=r"a\.txt"):
        run(store, ctx)


def test_new_file_in_context_misses(store: Store, ctx: Path) -> None:
    first = warm(store, ctx)
    (ctx / "unused.txt").write_text("x\n")
    assert not answers(store, ctx)
    again, seen = run(store, ctx)
    assert seen.ran == [] and again.image.id == first.image.id
    assert answers(store, ctx)  # and the new note answers the next one


def test_label_and_target_are_inputs(store: Store, ctx: Path) -> None:
    warm(store, ctx)
    assert not answers(store, ctx, labels={"a": "b"})
    again, _ = run(store, ctx, labels={"a": "b"})
    assert store.config(again.image).container_config.labels == {"a": "b"}


def test_retagged_base_image_misses(store: Store, ctx: Path) -> None:
    first = warm(store, ctx)
    store.tag(first.image, "busybox:latest")  # busybox now names another image
    assert not answers(store, ctx)
    again, seen = run(store, ctx)
    assert len(seen.ran) == 3  # on a new base every step runs again
    assert again.image.id != first.image.id


def test_pruned_cache_misses(store: Store, ctx: Path) -> None:
    warm(store, ctx)
    store.prune_cache(all=True)
    assert not answers(store, ctx)
    _, seen = run(store, ctx)
    assert len(seen.ran) == 3


def test_removed_image_misses(store: Store, ctx: Path) -> None:
    first = warm(store, ctx, tags=["app:1"])
    store.remove("app:1")
    with pytest.raises(Exception):  # noqa: B017 - gone from the store, by any error
        store.image(str(first.image.id))
    assert not answers(store, ctx, tags=["app:1"])
    again, seen = run(store, ctx, tags=["app:1"])
    assert seen.ran == [] and again.image.id == first.image.id  # the records held the layers


def test_no_cache_is_never_answered_and_renews_the_note(store: Store, ctx: Path) -> None:
    first = warm(store, ctx)
    assert not answers(store, ctx, no_cache=True)
    fresh, seen = run(store, ctx, no_cache=True)
    assert len(seen.ran) == 3
    assert fresh.image.id != first.image.id  # new times in the history
    # the records now are the no-cache build's: the answer must be its image
    again, seen2 = run(store, ctx)
    assert seen2.ran == [] and again.image.id == fresh.image.id


def test_pull_is_never_answered(store: Store, ctx: Path) -> None:
    warm(store, ctx)
    assert not answers(store, ctx, pull=True)


# ------------------------------------------------------------------ what is not noted


def test_symlink_in_context_is_not_noted(store: Store, ctx: Path) -> None:
    (ctx / "link").symlink_to("a.txt")
    run(store, ctx)
    run(store, ctx)
    assert not answers(store, ctx)


def test_build_with_check_findings_is_not_noted(store: Store, ctx: Path) -> None:
    (ctx / "Dockerfile").write_text(DOCKERFILE.replace("FROM busybox", "FROM busybox as base"))
    first, _ = run(store, ctx)
    assert first.warnings  # FromAsCasing
    assert not answers(store, ctx)
    again, _ = run(store, ctx)
    assert [f.rule for f in again.warnings] == [f.rule for f in first.warnings]


def test_notes_are_trimmed(store: Store, ctx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memo, "KEEP", 2)
    for x in "123":
        run(store, ctx, build_args={"X": x})
    notes = list((store.root / "build" / "memo").glob("*.json"))
    assert len(notes) == 2
    assert all(json.loads(p.read_text())["format"] == memo.FORMAT for p in notes)


# ------------------------------------------------------------------ the CLI's fast path

_HEAVY = (
    "aiohttp",
    "urllib3",
    "rich",
    "pyroute2",
    "isal",
    "zstandard",
    "jsonschema",
    "gantry.build.builder",
    "gantry.dockerfile.instructions",
    "gantry.dockerfile.checks",
    "gantry.runtime.run",
)


def _cli_modules(root: Path, ctx: Path, out: Path) -> tuple[str, list[str]]:
    """Run ``gantry build -q`` in a fresh interpreter; its stdout and loaded modules."""
    code = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        f"sys.argv = ['gantry', '--root', {str(root)!r}, 'build', '-q', '-t', 'app:1', "
        f"{str(ctx)!r}]\n"
        "from gantry.cli.main import main\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip(), json.loads(out.read_text())


def test_cli_cached_build_loads_neither_solver_nor_heavy_libraries(
    store: Store, ctx: Path, tmp_path: Path
) -> None:
    r = gantry(store.root, "build", "-q", "-t", "app:1", str(ctx))
    assert r.returncode == 0, r.stderr
    image_id = r.stdout.decode().strip()
    out, modules = _cli_modules(store.root, ctx, tmp_path / "mods.json")
    assert out == image_id
    assert [m for m in modules if m.split(".")[0] in _HEAVY or m in _HEAVY] == []
    # after a change the solver runs, the checks (known clean) stay unloaded
    (ctx / "a.txt").write_text("changed\n")
    out2, modules2 = _cli_modules(store.root, ctx, tmp_path / "mods2.json")
    assert out2 != image_id
    assert "gantry.build.builder" in modules2
    assert "gantry.dockerfile.checks" not in modules2
    # (a step ran: its layer is compressed, so isal may load now)
    light = ("aiohttp", "urllib3", "rich", "pyroute2", "jsonschema")
    assert [m for m in modules2 if m.split(".")[0] in light] == []


def test_cli_plain_progress_of_an_answer(store: Store, ctx: Path) -> None:
    for _ in range(2):
        r = gantry(store.root, "build", "--progress=plain", "-t", "app:1", str(ctx))
        assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert "#2 [2/4] COPY a.txt /a.txt\n#2 CACHED" in err
    assert '#4 [4/4] RUN echo "$X" >> /log\n#4 CACHED' in err
    assert "naming to docker.io/library/app:1 done" in err
