"""BuildKit's check rules: each fires on a bad Dockerfile and stays quiet on the fixed one."""

from __future__ import annotations

import pytest

from gantry.dockerfile.checks import RULES, Finding, run_checks


def findings(source: str, **kwargs: object) -> list[Finding]:
    kwargs.setdefault("base_env", lambda image: {})
    kwargs.setdefault("best_practices", False)
    return run_checks(source, file="Dockerfile", **kwargs).findings  # type: ignore[arg-type]  # test helper forwards keywords


def fired(source: str, rule: str, **kwargs: object) -> list[Finding]:
    return [f for f in findings(source, **kwargs) if f.rule.name == rule]


# rule, bad Dockerfile, (line, message) expected, good Dockerfile
CASES: list[tuple[str, str, tuple[int, str], str]] = [
    (
        "StageNameCasing",
        "FROM alpine AS BuilderBase\n",
        (1, "Stage name 'BuilderBase' should be lowercase"),
        "FROM alpine AS builder-base\n",
    ),
    (
        "FromAsCasing",
        "FROM alpine as builder\n",
        (1, "'as' and 'FROM' keywords' casing do not match"),
        "FROM alpine AS builder\n",
    ),
    (
        "NoEmptyContinuation",
        "FROM alpine\nRUN echo a \\\n\n  b\n",
        (4, "Empty continuation line"),
        "FROM alpine\nRUN echo a \\\n  b\n",
    ),
    (
        "ConsistentInstructionCasing",
        "FROM alpine\nRUN echo a\nrun echo b\nRUN echo c\n",
        (3, "Command 'run' should match the case of the command majority (uppercase)"),
        "FROM alpine\nRUN echo a\nRUN echo b\n",
    ),
    (
        "DuplicateStageName",
        "FROM alpine AS b\nFROM alpine AS b\n",
        (2, 'Duplicate stage name "b", stage names should be unique'),
        "FROM alpine AS a\nFROM alpine AS b\n",
    ),
    (
        "ReservedStageName",
        "FROM alpine AS scratch\n",
        (1, 'Stage name should not use the same name as reserved stage "scratch"'),
        "FROM alpine AS base\n",
    ),
    (
        "JSONArgsRecommended",
        "FROM alpine\nENTRYPOINT my-program start\n",
        (2, "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior"),
        'FROM alpine\nENTRYPOINT ["my-program", "start"]\n',
    ),
    (
        "MaintainerDeprecated",
        "FROM alpine\nMAINTAINER moby@example.com\n",
        (2, "Maintainer instruction is deprecated in favor of using label"),
        'FROM alpine\nLABEL org.opencontainers.image.authors="moby@example.com"\n',
    ),
    (
        "UndefinedArgInFrom",
        "ARG VERSION=latest\nFROM alpine:${VERSIO}\n",
        (2, "FROM argument 'VERSIO' is not declared (did you mean VERSION?)"),
        "ARG VERSION=latest\nFROM alpine:${VERSION}\n",
    ),
    (
        "WorkdirRelativePath",
        "FROM alpine\nWORKDIR app\n",
        (2, 'Relative workdir "app" can have unexpected results if the base image changes'),
        "FROM alpine\nWORKDIR /app\nWORKDIR sub\n",
    ),
    (
        "UndefinedVar",
        "FROM alpine\nARG foo=1\nCOPY $fooo /dst\n",
        (3, "Usage of undefined variable '$fooo' (did you mean $foo?)"),
        "FROM alpine\nARG foo\nCOPY $foo /dst\n",
    ),
    (
        "MultipleInstructionsDisallowed",
        'FROM alpine\nCMD ["a"]\nCMD ["b"]\n',
        (2, "Multiple CMD instructions should not be used in the same stage because only"),
        'FROM alpine AS a\nCMD ["a"]\nFROM a\nCMD ["b"]\n',
    ),
    (
        "LegacyKeyValueFormat",
        "FROM alpine\nENV DEPS curl git\n",
        (2, '"ENV key=value" should be used instead of legacy "ENV key value" format'),
        'FROM alpine\nENV DEPS="curl git"\n',
    ),
    (
        "RedundantTargetPlatform",
        "FROM --platform=${TARGETPLATFORM} alpine\n",
        (1, "Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant"),
        "FROM --platform=${BUILDPLATFORM} alpine\n",
    ),
    (
        "SecretsUsedInArgOrEnv",
        "FROM alpine\nARG AWS_SECRET_ACCESS_KEY\n",
        (2, 'Do not use ARG or ENV instructions for sensitive data (ARG "AWS_SECRET_ACCESS_KEY")'),
        "FROM alpine\nARG PUBLIC_KEY\nENV PASSWORD_FILE=/run/secrets/pw\n",
    ),
    (
        "InvalidDefaultArgInFrom",
        "ARG TAG\nFROM busybox:${TAG}\n",
        (2, "Default value for ARG busybox:${TAG} results in empty or invalid base image name"),
        "ARG TAG=latest\nFROM busybox:${TAG}\n",
    ),
    (
        "FromPlatformFlagConstDisallowed",
        "FROM --platform=linux/amd64 alpine AS builder\n",
        (1, 'FROM --platform flag should not use constant value "linux/amd64"'),
        "FROM --platform=linux/amd64 alpine AS builder-amd64\n",
    ),
    (
        "ExposeProtoCasing",
        "FROM alpine\nEXPOSE 80/TCP\n",
        (2, "Defined protocol '80/TCP' in EXPOSE instruction should be lowercase"),
        "FROM alpine\nEXPOSE 80/tcp\n",
    ),
    (
        "ExposeInvalidFormat",
        "FROM alpine\nEXPOSE 127.0.0.1:80:80\n",
        (
            2,
            "EXPOSE instruction should not define an IP address or host-port mapping, "
            "found '127.0.0.1:80:80'",
        ),
        "FROM alpine\nEXPOSE 80\n",
    ),
]


@pytest.mark.parametrize(("rule", "bad", "expected", "good"), CASES, ids=[c[0] for c in CASES])
def test_rule_fires_and_is_quiet(rule: str, bad: str, expected: tuple[int, str], good: str) -> None:
    hits = fired(bad, rule)
    assert hits, f"{rule} did not fire"
    line, message = expected
    assert hits[0].line == line
    assert hits[0].message.startswith(message), hits[0].message
    assert hits[0].rule.url == RULES[rule].url
    assert hits[0].rule.url.startswith("https://docs.docker.com/go/dockerfile/rule/")
    assert fired(good, rule) == []


def test_every_buildkit_rule_is_covered() -> None:
    covered = {c[0] for c in CASES} | {"CopyIgnoredFile", "InvalidDefinitionDescription"}
    assert covered == {r.name for r in RULES.values() if r.buildkit}


def test_copy_ignored_file_is_experimental(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".dockerignore").write_text("secret.txt\nbuild/\n!build/keep\n")
    src = "FROM alpine\nCOPY secret.txt app.py /dst/\nCOPY build /b\nCOPY --from=x secret.txt /s\n"
    assert fired(src, "CopyIgnoredFile", context_dir=tmp_path) == []
    hits = fired(
        "# check=experimental=CopyIgnoredFile\n" + src, "CopyIgnoredFile", context_dir=tmp_path
    )
    assert [h.message for h in hits] == [
        'Attempting to Copy file "secret.txt" that is excluded by .dockerignore'
    ]
    assert hits[0].line == 3


def test_invalid_definition_description() -> None:
    bad = "# check=experimental=all\n\n# the base image\nFROM alpine AS base\n"
    good = "# check=experimental=all\n\n# base is the base image\nFROM alpine AS base\n"
    assert [f.line for f in fired(bad, "InvalidDefinitionDescription")] == [4]
    assert fired(good, "InvalidDefinitionDescription") == []


def test_undefined_var_uses_base_image_env() -> None:
    src = "FROM golang:1.22\nWORKDIR $GOPATH/src\n"
    assert [f.message for f in fired(src, "UndefinedVar")] == [
        "Usage of undefined variable '$GOPATH' (did you mean $PATH?)"
    ]
    assert fired(src, "UndefinedVar", base_env=lambda image: {"GOPATH": "/go"}) == []
    # an image whose ENV is unknown is not guessed at
    assert fired(src, "UndefinedVar", base_env=lambda image: None) == []
    # PATH always exists; RUN and CMD are not expanded by the builder
    assert (
        fired("FROM scratch\nENV PATH=$PATH:/x\nRUN echo $NOPE\nCMD echo $NOPE\n", "UndefinedVar")
        == []
    )


def test_undefined_var_sees_declared_args_without_value() -> None:
    assert fired("FROM alpine\nARG V\nLABEL v=$V\n", "UndefinedVar") == []


def test_global_arg_not_visible_in_stage_unless_redeclared() -> None:
    src = "ARG V=1\nFROM alpine\nLABEL v=$V\n"
    assert [f.message for f in fired(src, "UndefinedVar")] == ["Usage of undefined variable '$V'"]
    assert fired("ARG V=1\nFROM alpine\nARG V\nLABEL v=$V\n", "UndefinedVar") == []


def test_platform_args_are_declared_for_from() -> None:
    assert (
        fired("FROM --platform=$BUILDPLATFORM alpine:${TARGETARCH}\n", "UndefinedArgInFrom") == []
    )


def test_multiple_reports_previous_location() -> None:
    src = "FROM alpine\nHEALTHCHECK NONE\nRUN x\nHEALTHCHECK CMD true\n"
    assert [f.line for f in fired(src, "MultipleInstructionsDisallowed")] == [2]


def test_json_args_not_recommended_after_shell() -> None:
    src = 'FROM alpine\nSHELL ["/bin/bash", "-c"]\nCMD echo hi\n'
    assert fired(src, "JSONArgsRecommended") == []


def test_workdir_inherited_from_base_stage() -> None:
    src = "FROM alpine AS base\nWORKDIR /app\nFROM base\nWORKDIR sub\n"
    assert fired(src, "WorkdirRelativePath") == []


def test_lowercase_majority() -> None:
    src = "from alpine\nrun a\nrun b\nRUN c\n"
    hits = fired(src, "ConsistentInstructionCasing")
    assert [(h.line, h.message) for h in hits] == [
        (4, "Command 'RUN' should match the case of the command majority (lowercase)")
    ]
