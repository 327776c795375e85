"""ARG/ENV scoping: global args, re-declaration, --build-arg, platform and proxy args."""

from __future__ import annotations

import pytest

from gantry.dockerfile.args import (
    PROXY_ARGS,
    Platform,
    Resolver,
    Step,
    global_scope,
    platform_args,
    run_history,
)
from gantry.dockerfile.instructions import (
    ArgInstr,
    CopyInstr,
    EnvInstr,
    ExposeInstr,
    RunInstr,
    WorkdirInstr,
    parse_dockerfile,
)
from gantry.dockerfile.stages import build_stage_graph
from gantry.errors import DockerfileError

BUILTIN = platform_args(Platform("linux", "amd64"), Platform("linux", "arm64"))


def resolve(
    source: str, build_args: dict[str, str] | None = None, base: dict[str, str] | None = None
) -> tuple[list[list[Step]], Resolver]:
    args = build_args or {}
    df = parse_dockerfile(source)
    graph = build_stage_graph(df, build_args=args, builtin_args=BUILTIN)
    scope = global_scope(graph.meta_arg_instructions, build_args=args, builtin=BUILTIN)
    resolver = Resolver(scope, build_args=args, base_env=lambda stage: base or {})
    return [resolver.resolve(s) for s in graph.stages], resolver


def test_global_args_reach_from_only_when_redeclared() -> None:
    src = "ARG V=1\nARG W=2\nFROM alpine:$V\nENV A=$V B=$W\nARG V\nENV C=$V\n"
    (steps,), _ = resolve(src)
    env1, _, env2 = steps
    assert isinstance(env1.expanded, EnvInstr) and env1.expanded.pairs == (("A", ""), ("B", ""))
    assert env1.unmatched == {"V", "W"}
    assert isinstance(env2.expanded, EnvInstr) and env2.expanded.pairs == (("C", "1"),)
    assert env2.used == {"V"} and env2.unmatched == frozenset()


@pytest.mark.parametrize(
    ("build_args", "expected"),
    [
        ({}, "stage-default"),
        ({"V": "cli"}, "cli"),
    ],
)
def test_build_arg_overrides_stage_default(build_args: dict[str, str], expected: str) -> None:
    (steps,), _ = resolve("ARG V=global\nFROM alpine\nARG V=stage-default\nENV X=$V\n", build_args)
    assert steps[1].expanded.pairs == (("X", expected),)  # type: ignore[attr-defined]  # an EnvInstr


def test_global_scope_values() -> None:
    df = parse_dockerfile("ARG A=x\nARG B=${A}y\nARG C\nARG D=${C:-unset}\nFROM alpine\n")
    graph = build_stage_graph(df, builtin_args=BUILTIN)
    scope = global_scope(graph.meta_arg_instructions, builtin=BUILTIN)
    assert scope.values["B"] == "xy"
    assert "C" not in scope.values and scope.declared["C"].value is None
    assert scope.values["D"] == "unset"  # declared without value means not set
    assert scope.expand("img:${B}").result == "img:xy"
    scope = global_scope(graph.meta_arg_instructions, build_args={"C": ""}, builtin=BUILTIN)
    assert scope.values["D"] == "unset" and scope.declared["C"].from_build_arg


def test_platform_args() -> None:
    assert BUILTIN["BUILDPLATFORM"] == "linux/amd64"
    assert BUILTIN["TARGETPLATFORM"] == "linux/arm64"
    assert BUILTIN["TARGETARCH"] == "arm64" and BUILTIN["TARGETVARIANT"] == ""
    arm = platform_args(target=Platform.parse("linux/arm/v6"), overrides={"TARGETOS": "x"})
    assert arm["TARGETPLATFORM"] == "linux/arm/v6" and arm["TARGETOS"] == "x"
    assert str(Platform.parse("arm64")) == "linux/arm64"
    assert str(Platform.parse("linux/aarch64")) == "linux/arm64"
    with pytest.raises(ValueError):
        Platform.parse("linux//x")
    src = "FROM alpine\nARG TARGETARCH\nARG BUILDOS\nENV T=$TARGETARCH/$BUILDOS U=$TARGETOS\n"
    (steps,), _ = resolve(src)
    assert steps[2].expanded.pairs == (("T", "arm64/linux"), ("U", ""))  # type: ignore[attr-defined]
    assert steps[2].unmatched == {"TARGETOS"}


def test_env_and_arg_order_and_image_env() -> None:
    src = "FROM alpine\nARG X=arg\nENV X=env Y=$X\nENV Z=$X$HOME\n"
    (steps,), _ = resolve(src, base={"HOME": "/root"})
    assert steps[1].expanded.pairs == (("X", "env"), ("Y", "arg"))  # type: ignore[attr-defined]
    assert steps[2].expanded.pairs == (("Z", "env/root"),)  # type: ignore[attr-defined]
    assert steps[2].env["PATH"].startswith("/usr/local/sbin")


def test_stage_from_stage_inherits_args_and_env() -> None:
    src = "FROM alpine AS a\nARG A=1\nENV E=2\nFROM a\nRUN x\nWORKDIR /$A/$E\n"
    (_, second), _ = resolve(src)
    run, workdir = second
    assert isinstance(workdir.expanded, WorkdirInstr) and workdir.expanded.path == "/1/2"
    assert run.args == (("A", "1"),) and run.build_args == {"A": "1"}


def test_expanded_instructions() -> None:
    src = (
        'FROM alpine\nARG S=src D=/dst P=8080 U=1000 PS="1 2"\n'
        "COPY --chown=$U --chmod=755 $S/a ${S}b $D/\n"
        "EXPOSE $P/tcp $PS\n"
        "RUN --mount=type=cache,target=/cache/$S echo $S\n"
        "COPY <<EOF /f\n$S\nEOF\n"
    )
    (steps,), _ = resolve(src)
    copy, expose, run, heredoc = steps[1:]
    assert isinstance(copy.expanded, CopyInstr)
    assert copy.expanded.sources == ("src/a", "srcb") and copy.expanded.dest == "/dst/"
    assert copy.expanded.chown == "1000" and copy.used == {"S", "D", "U"}
    assert isinstance(expose.expanded, ExposeInstr)
    assert expose.expanded.ports == ("8080/tcp", "1", "2")
    assert isinstance(run.expanded, RunInstr)
    assert run.expanded.mounts[0].target == "/cache/src"
    assert run.expanded.cmd == ("echo $S",)  # the shell expands RUN, not the builder
    assert isinstance(heredoc.expanded, CopyInstr)
    assert heredoc.expanded.contents[0].data == "src\n"


def test_arg_step_values() -> None:
    (steps,), _ = resolve("ARG G=g\nFROM alpine\nARG G\nARG N\nARG D=$G-d\n")
    assert isinstance(steps[2].expanded, ArgInstr)
    assert [(p.name, p.default) for s in steps for p in s.expanded.args] == [  # type: ignore[attr-defined]
        ("G", "g"),
        ("N", None),
        ("D", "g-d"),
    ]
    assert steps[-1].args == (("G", "g"), ("N", None), ("D", "g-d"))
    assert steps[-1].build_args == {"G": "g", "D": "g-d"}


def test_unconsumed_build_args() -> None:
    src = "ARG G\nFROM alpine AS a\nARG S\nFROM alpine\n"
    args = {"G": "1", "S": "2", "X": "3", "https_proxy": "p", "BUILDARCH": "arm64"}
    _, resolver = resolve(src, args)
    assert resolver.unconsumed() == ["X"]


def test_proxy_args_reach_run_without_declaration() -> None:
    (steps,), _ = resolve("FROM alpine\nARG X=1\nRUN env\n")
    env = steps[1].run_env({"HTTP_PROXY": "http://p:3128", "NOT_A_PROXY": "x"})
    assert env["HTTP_PROXY"] == "http://p:3128" and "NOT_A_PROXY" not in env
    assert env["X"] == "1"
    assert "HTTP_PROXY" in PROXY_ARGS and "no_proxy" in PROXY_ARGS
    assert "HTTP_PROXY" not in dict(steps[1].args)  # not in history unless declared


def test_run_history() -> None:
    assert run_history(["/bin/sh", "-c", "make"], [], {}) == "RUN /bin/sh -c make"
    line = run_history(["/bin/sh", "-c", "make"], [("A", "1"), ("B", None)], {"A": "env"})
    assert line == "RUN |2 A=env B= /bin/sh -c make"


def test_expansion_error_has_line() -> None:
    with pytest.raises(DockerfileError) as info:
        resolve("FROM alpine\n\nENV A=${B:?unset}\n")
    assert info.value.line == 3
    assert "unset" in info.value.message
