"""gantry's image best-practice rules: positive and negative Dockerfiles, table-driven."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.dockerfile.checks import RULES, Finding, run_checks


def fired(source: str, rule: str, **kwargs: object) -> list[Finding]:
    kwargs.setdefault("base_env", lambda image: {})
    report = run_checks(source, file="Dockerfile", **kwargs)  # type: ignore[arg-type]  # forwarded keywords
    return [f for f in report.findings if f.rule.name == rule]


U = "USER app\n"  # keeps RunsAsRoot quiet where it is not the subject

CASES: list[tuple[str, str, str]] = [
    (
        "AptNoInstallRecommends",
        "FROM debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n",
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl "
        "&& rm -rf /var/lib/apt/lists/*\n",
    ),
    (
        "AptListsNotCleaned",
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n",
        "FROM debian:12\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update "
        "&& apt-get install -y --no-install-recommends curl\n",
    ),
    (
        "AptUpdateAlone",
        "FROM debian:12\nRUN apt-get update\n",
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl "
        "&& rm -rf /var/lib/apt/lists/*\n",
    ),
    (
        "PipNoCacheDir",
        "FROM python:3.12\nRUN python3 -m pip install -r requirements.txt\n",
        "FROM python:3.12\nENV PIP_NO_CACHE_DIR=1\nRUN pip install flask\n",
    ),
    ("BaseImageNotPinned", "FROM ubuntu\n", "FROM ubuntu:24.04\n"),
    ("RunsAsRoot", "FROM alpine:3.20\nUSER app\nUSER root\n", "FROM alpine:3.20\nUSER 1000:1000\n"),
    (
        "UseCopyInsteadOfAdd",
        "FROM alpine:3.20\nADD app.py /app/\n",
        "FROM alpine:3.20\nADD https://example.com/x.tgz rootfs.tar.gz /app/\n",
    ),
    (
        "ConsecutiveRunInstructions",
        "FROM alpine:3.20\nRUN a\nRUN b\nRUN c\n",
        "FROM alpine:3.20\nRUN a && b\nCOPY x /x\nRUN c\n",
    ),
]


@pytest.mark.parametrize(("rule", "bad", "good"), CASES, ids=[c[0] for c in CASES])
def test_practice_fires_and_is_quiet(rule: str, bad: str, good: str) -> None:
    hits = fired(bad + U if rule != "RunsAsRoot" else bad, rule)
    assert hits, rule
    assert hits[0].line >= 1 and hits[0].fix
    assert RULES[rule].url == ""
    assert fired(good + U if rule != "RunsAsRoot" else good, rule) == []
    assert fired(bad, rule, best_practices=False) == []
    assert fired("# check=skip=" + rule + "\n" + bad, rule) == []


def test_table_covers_every_practice_rule() -> None:
    own = {r.name for r in RULES.values() if not r.buildkit}
    assert own - {c[0] for c in CASES} == {"LargeContextWithoutDockerignore", "UnconsumedBuildArgs"}


def test_consecutive_runs_reported_once_per_group() -> None:
    hits = fired("FROM alpine:3.20\nRUN a\nRUN b\nRUN c\nUSER x\n", "ConsecutiveRunInstructions")
    assert [(h.line, h.end_line, h.message) for h in hits] == [
        (2, 4, "3 consecutive RUN instructions (lines 2-4) make 3 layers")
    ]


def test_runs_as_root_looks_at_final_stage_chain() -> None:
    src = "FROM alpine:3.20 AS base\nUSER app\nFROM base\nRUN x\n"
    assert fired(src, "RunsAsRoot") == []
    src = "FROM alpine:3.20 AS build\nUSER app\nFROM alpine:3.20\nCOPY --from=build /a /a\n"
    assert [h.line for h in fired(src, "RunsAsRoot")] == [3]


def test_pinned_by_digest_and_stage_bases_are_fine() -> None:
    digest = "sha256:" + "a" * 64
    assert fired(f"FROM alpine@{digest}\n", "BaseImageNotPinned") == []
    assert fired("FROM scratch\n", "BaseImageNotPinned") == []
    src = "FROM alpine:3.20 AS b\nFROM b\n"
    assert fired(src, "BaseImageNotPinned") == []
    assert [h.message for h in fired("FROM alpine:latest\n", "BaseImageNotPinned")] == [
        "Base image 'alpine:latest' uses the moving 'latest' tag"
    ]


def test_heredoc_run_is_read() -> None:
    src = "FROM debian:12\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\n"
    assert fired(src, "AptNoInstallRecommends")
    assert fired(src, "AptUpdateAlone") == []


def test_large_context_without_dockerignore(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"f{i}").write_bytes(b"x")
    (tmp_path / "Dockerfile").write_text("FROM alpine:3.20\n")
    from gantry.dockerfile.rules.practices import context_hits

    hits = context_hits(str(tmp_path), False, max_files=10)
    assert [h.rule for h in hits] == ["LargeContextWithoutDockerignore"]
    assert context_hits(str(tmp_path), True, max_files=10) == []
    assert context_hits(str(tmp_path), False) == []  # 31 files is not large
    report = run_checks("FROM alpine:3.20\nUSER a\n", context_dir=tmp_path)
    assert [f.rule.name for f in report.findings] == []


def test_unconsumed_build_args() -> None:
    src = "ARG G\nFROM alpine:3.20\nARG USED\nUSER a\n"
    args = {"USED": "1", "G": "2", "EXTRA": "3", "HTTP_PROXY": "p", "TARGETARCH": "arm64"}
    hits = fired(src, "UnconsumedBuildArgs", build_args=args)
    assert [(h.line, h.message) for h in hits] == [
        (0, "One or more build-args [EXTRA] were not consumed")
    ]
    assert hits[0].location == "Dockerfile"
