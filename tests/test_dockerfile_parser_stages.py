"""The stage graph: meta args, named/numbered stages, FROM <stage>, COPY --from, RUN --mount from=,
--target pruning, and the errors (unknown target, duplicate names, cycles, bad indexes)."""

from __future__ import annotations

import pytest

from gantry.dockerfile.instructions import CopyInstr, parse_dockerfile
from gantry.dockerfile.stages import StageGraph, build_stage_graph
from gantry.errors import DockerfileError

MULTI = """\
ARG GO=1.22
ARG BASE=alpine:${GO_BASE:-3.19}
FROM --platform=$BUILDPLATFORM golang:${GO} AS Build
RUN go build -o /out/app
FROM build AS test
RUN go test
FROM $BASE AS assets
COPY web /web
FROM scratch
COPY --from=build /out/app /app
RUN --mount=type=bind,from=assets,source=/web,target=/w cp -r /w /srv
COPY --from=nginx:1.25 /etc/nginx /etc/nginx
"""


def graph(text: str, **kwargs: object) -> StageGraph:
    kwargs.setdefault("builtin_args", {"BUILDPLATFORM": "linux/amd64"})
    return build_stage_graph(parse_dockerfile(text, file="Dockerfile"), **kwargs)  # type: ignore[arg-type]  # test helper forwards keywords


def test_stages_meta_args_and_links() -> None:
    g = graph(MULTI)
    assert [(s.index, s.name, s.image, s.line) for s in g.stages] == [
        (0, "build", "golang:1.22", 3),
        (1, "test", "build", 5),
        (2, "assets", "alpine:3.19", 7),
        (3, None, "scratch", 9),
    ]
    assert g.stages[0].platform == "linux/amd64"
    assert g.stages[1].base is g.stages[0]
    final = g.stages[3]
    assert g.target is final and final.display_name == "stage-3"
    assert sorted(final.deps) == [0, 2]
    assert isinstance(final.deps[0], CopyInstr) and final.deps[0].start_line == 10
    assert final.images == ["nginx:1.25"]
    assert g.meta_args == {"GO": "1.22", "BASE": "alpine:3.19"}
    assert [i.start_line for i in g.stages[0].instructions] == [4]


def test_build_args_override_meta_defaults() -> None:
    g = graph(MULTI, build_args={"GO": "1.21", "GO_BASE": "ignored"})
    assert g.stages[0].image == "golang:1.21"
    # GO_BASE is not a declared meta arg: a build arg alone does not define it
    assert g.stages[2].image == "alpine:3.19"


def test_target_prunes() -> None:
    g = graph(MULTI)
    assert [s.index for s in g.reachable()] == [0, 2, 3]
    g = graph(MULTI, target="TEST")
    assert g.target.name == "test"
    assert [s.display_name for s in g.reachable()] == ["build", "test"]
    assert [s.display_name for s in graph(MULTI, target="assets").reachable()] == ["assets"]


def test_numbered_references() -> None:
    g = graph("FROM a\nRUN x\nFROM b\nCOPY --from=0 /x /y\n")
    assert g.stages[1].deps.keys() == {0}
    assert g.find("0") is g.stages[0] and g.find("busybox") is None


def test_unknown_target() -> None:
    with pytest.raises(DockerfileError) as info:
        graph(MULTI, target="tets")
    assert str(info.value) == 'target stage "tets" could not be found (did you mean test?)'


def test_duplicate_stage_name() -> None:
    with pytest.raises(DockerfileError) as info:
        graph("FROM a AS x\nFROM b AS X\n")
    err = info.value
    assert str(err) == 'duplicate stage name "x", stage names should be unique'
    assert (err.file, err.line, err.hint) == ("Dockerfile", 2, "first defined on line 1")


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("FROM a AS x\nCOPY --from=x / /\n", "circular dependency detected on stage: x", 2),
        (
            "FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nRUN --mount=from=x,target=/m true\n",
            "circular dependency detected on stage: x",
            4,
        ),
        ("FROM a\nCOPY --from=1 / /\n", "invalid stage index 1", 2),
        ("FROM a\nCOPY --from=-1 / /\n", "invalid stage index -1", 2),
        ("RUN x\nFROM a\n", "no build stage in current context", 1),
        ("ARG IMG\nFROM $IMG\n", "base name ($IMG) should not be blank", 2),
        ("FROM --platform=$P a\n", "empty platform value from expression $P", 1),
        ("FROM ${X:?needX}\n", 'failed to process "${X:?needX}": X: needX', 1),
    ],
)
def test_graph_errors(text: str, message: str, line: int) -> None:
    with pytest.raises(DockerfileError) as info:
        graph(text)
    assert str(info.value) == message
    assert info.value.line == line


def test_stage_can_use_a_later_stage_by_copy() -> None:
    g = graph("FROM a AS first\nCOPY --from=second /x /x\nFROM b AS second\n", target="first")
    assert [s.name for s in g.reachable()] == ["first", "second"]


def test_from_a_later_stage_name_is_an_image() -> None:
    g = graph("FROM later AS first\nFROM b AS later\n")
    assert g.stages[0].base is None and g.stages[0].image == "later"


def test_long_chain_has_no_recursion_limit() -> None:
    text = "FROM scratch AS s0\n" + "".join(
        f"FROM s{i - 1} AS s{i}\nCOPY --from=s{i - 1} /a /a\n" for i in range(1, 3000)
    )
    g = graph(text)
    assert len(g.reachable()) == 3000


# --- global ARGs without a value, and the automatic platform args -----------------------


@pytest.mark.parametrize(
    ("text", "image"),
    [
        ("ARG X\nFROM alpine:${X-def}\n", "alpine:def"),
        ("ARG X\nFROM alpine:${X:-def}\n", "alpine:def"),
        ("ARG X\nFROM alpine${X+:set}\n", "alpine"),
        ("ARG X=\nFROM alpine:${X-def}x\n", "alpine:x"),  # declared empty: set
        ("ARG X=\nFROM alpine${X+:set}\n", "alpine:set"),
        ("ARG X\nARG Y=${X-fallback}\nFROM img:$Y\n", "img:fallback"),
    ],
)
def test_global_arg_without_default_is_unset(text: str, image: str) -> None:
    g = graph(text)
    assert g.stages[0].image == image


def test_global_arg_without_default_keeps_none_in_meta_args() -> None:
    g = graph("ARG X\nARG Y=1\nFROM a\n")
    assert g.meta_args == {"X": None, "Y": "1"}
    assert g.scope is not None and "X" not in g.scope.values
    # a --build-arg sets it, even to the empty string
    g = graph("ARG X\nFROM alpine${X+:set}\n", build_args={"X": ""})
    assert g.meta_args == {"X": ""} and g.stages[0].image == "alpine:set"


def test_platform_args_default_to_the_host() -> None:
    from gantry.dockerfile.platforms import host_platform

    df = parse_dockerfile(
        "FROM --platform=$TARGETPLATFORM alpine AS a\nFROM --platform=$BUILDOS b\n"
    )
    g = build_stage_graph(df)  # no builtin_args
    host = host_platform()
    assert g.stages[0].platform == str(host)
    assert g.stages[1].platform == host.os == "linux"


def test_platform_build_arg_overrides_the_default() -> None:
    df = parse_dockerfile("FROM --platform=$TARGETPLATFORM alpine\n")
    g = build_stage_graph(df, build_args={"TARGETPLATFORM": "linux/s390x"})
    assert g.stages[0].platform == "linux/s390x"


def test_given_builtin_args_replace_the_host_defaults() -> None:
    df = parse_dockerfile("FROM --platform=$TARGETPLATFORM alpine\n")
    with pytest.raises(DockerfileError, match="empty platform value"):
        build_stage_graph(df, builtin_args={})
    g = build_stage_graph(df, builtin_args={"TARGETPLATFORM": "linux/riscv64"})
    assert g.stages[0].platform == "linux/riscv64"
