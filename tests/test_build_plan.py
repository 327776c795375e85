"""The builder on the frontend's stage graph and ARG resolver: pinned cache keys and history.

The cache keys and history lines below were produced by the builder's own planner before
it moved to :mod:`gantry.dockerfile.stages`/:mod:`gantry.dockerfile.args`; they must not
change (a changed key silently invalidates every user's cache). The one deliberate
difference: a RUN after ``ARG NOVAL`` (declared, no value) now lists ``NOVAL=`` in its
history line, as BuildKit's ``runCommandString`` does. And one deliberate key change: a
COPY of a directory keys on the digest of its entry lines (remembered by their stats, so
an unchanged tree is not read again), not on the lines themselves.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.build.builder import BuildOptions, build
from gantry.build.plan import plan
from gantry.dockerfile.instructions import parse_dockerfile
from gantry.store import Store
from test_build_support import add_busybox, need_root

DOCKERFILE = """\
ARG BASE=busybox
ARG GLOBAL=g1
FROM ${BASE} AS builder
ARG GLOBAL
ARG OVER=default
ARG NOVAL
ENV E1=one PATH=/usr/bin:/bin
RUN echo "$GLOBAL $OVER $E1" > /out
WORKDIR /work
COPY --chmod=600 a.txt ./
COPY dir/ /dir/
RUN ["sh", "-c", "echo exec > /exec"]
RUN <<EOT
echo heredoc > /hd
EOT
FROM busybox
ARG OVER
LABEL l=1
COPY --from=builder /out /exec /copied/
USER 1000
EXPOSE 80/tcp 443
CMD ["sh"]
ENTRYPOINT echo hi
RUN id > /tmp/id || true
"""

KEYS = [
    ("COPY --chmod=600 a.txt ./", "76079c57f7985a9c681da6ade124f5097e27597070db880d5e573c010736b574"),
    ("COPY --from=builder /out /exec /copied/", "8893c7cf229edfb04aaec7a1c2e9ff93f5a07b4b9eddaf6772b17216f2a793fe"),
    ("COPY dir/ /dir/", "4ad30ea68d81ec7f2dd3602c6f8dae5095c506d28cd5fb2a6a3d07df26e4f778"),
    ("RUN <<EOT", "78e979f763ebb246b65501df402023eeb74f239ac544dbcdb804cdd0572dd2b9"),
    ('RUN ["sh", "-c", "echo exec > /exec"]', "e8d066f897d6d414bdf80bd8321c681d42f813eb3a68b7acaff83cc2c3fe7e1a"),
    ('RUN echo "$GLOBAL $OVER $E1" > /out', "819fede816432868ffe1df399b5a4dcbceb4f7a5546d48a0d4dd9b66fc799233"),
    ("RUN id > /tmp/id || true", "f2f54162df7c326be9abda83b7828b10fdde262961c676c90f6c4340c38b3e6a"),
    ("WORKDIR /work", "9682251cf3e84273dbadc333bfbed9b1e0c18ae0f99333020446d9e672bfab7b"),
]  # fmt: skip

FINAL_HISTORY = [
    "ARG OVER=given",
    "LABEL l=1",
    "COPY /out /exec /copied/ # buildkit",
    "USER 1000",
    "EXPOSE map[443/tcp:{} 80/tcp:{}]",
    'CMD ["sh"]',
    'ENTRYPOINT ["/bin/sh" "-c" "echo hi"]',
    "RUN |1 OVER=given /bin/sh -c id > /tmp/id || true # buildkit",
]

BUILDER_HISTORY = [
    "ARG GLOBAL=g1",
    "ARG OVER=given",
    "ARG NOVAL",
    "ENV E1=one PATH=/usr/bin:/bin",
    'RUN |3 GLOBAL=g1 OVER=given NOVAL= /bin/sh -c echo "$GLOBAL $OVER $E1" > /out # buildkit',
    "WORKDIR /work",
    "COPY --chmod=600 a.txt ./ # buildkit",
    "COPY dir/ /dir/ # buildkit",
    "RUN |3 GLOBAL=g1 OVER=given NOVAL= sh -c echo exec > /exec # buildkit",
    "RUN |3 GLOBAL=g1 OVER=given NOVAL= /bin/sh -c echo heredoc > /hd\n # buildkit",
]


@pytest.fixture
def store(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_root()
    s = Store(root)
    add_busybox(s, tmp_path)
    yield s
    s.close()


def test_cache_keys_history_and_image_id_are_pinned(store: Store, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "dir").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "a.txt").write_text("a\n")
    (ctx / "dir" / "b.txt").write_text("b\n")
    args = {"OVER": "given", "UNUSED": "x"}
    result = build(
        store,
        BuildOptions(context=ctx, build_args=args, source_date_epoch=0, tags=["pin:1"]),
    )
    keys = sorted(
        (r.description.split("] ", 1)[1], r.key.removeprefix("sha256:"))
        for r in store.cache_records()
    )
    assert keys == KEYS
    history = [h.created_by for h in store.config(result.image).history]
    assert history[2:] == FINAL_HISTORY
    assert str(result.image.id) == (
        "sha256:2ffa51baceac4b7c1d5ec2eee0432e979923a6187627deb4724e120f338639ce"
    )
    assert result.unconsumed_args == ["UNUSED"]
    first = build(
        store,
        BuildOptions(context=ctx, build_args=args, source_date_epoch=0, target="builder"),
    )
    assert [h.created_by for h in store.config(first.image).history][2:] == BUILDER_HISTORY
    assert first.cached == first.steps  # every step of the builder stage was already done


def test_order_and_from_expanded_with_global_args() -> None:
    df = parse_dockerfile(
        b"ARG SRC=tools\n"
        b"FROM busybox AS tools\n"
        b"FROM busybox AS unused\n"
        b"FROM busybox AS base\n"
        b"FROM base\n"
        b"COPY --from=${SRC} /x /x\n",
        file="Dockerfile",
    )
    p = plan(df, {}, None)
    names = [s.display_name for s in p.order]
    assert names[-1] == "stage-3"
    assert set(names) == {"tools", "base", "stage-3"}  # "unused" is not built
    assert names.index("base") < names.index("stage-3")
    assert p.find("${SRC}") is p.stages[0]
    assert p.find("2") is p.stages[2]
    assert p.find("alpine:3") is None
    other = plan(df, {"SRC": "unused"}, None)
    assert {s.display_name for s in other.order} == {"unused", "base", "stage-3"}
