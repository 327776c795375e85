"""# check= directive, error levels, output formats, the CLI, and BuildKit's golden files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONFORMANCE
from gantry.dockerfile.checks import CheckConfig, format_json, format_text, run_checks
from gantry.errors import DockerfileError

BAD = "FROM alpine:3.20 as base\nMAINTAINER me\nUSER app\n"


def rules(source: str, **kwargs: object) -> list[str]:
    report = run_checks(source, file="Dockerfile", **kwargs)  # type: ignore[arg-type]  # forwarded keywords
    return [f.rule.name for f in report.findings]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", CheckConfig()),
        ("skip=all", CheckConfig(skip_all=True)),
        (" skip = A, B ;error=true", CheckConfig(skip=frozenset({"A", "B"}), error=True)),
        ("experimental=all;error=0", CheckConfig(experimental_all=True)),
        ("experimental=CopyIgnoredFile", CheckConfig(experimental=frozenset({"CopyIgnoredFile"}))),
    ],
)
def test_parse_check_options(text: str, expected: CheckConfig) -> None:
    assert CheckConfig.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("skip", 'failed to parse check options: invalid check option "skip"'),
        ("bogus=1", 'failed to parse check options: invalid check option "bogus"'),
        (
            "error=maybe",
            'failed to parse check options: failed to parse check option "error=maybe"',
        ),
    ],
)
def test_bad_check_options(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        CheckConfig.parse(text)
    assert str(info.value).startswith(message)


def test_directive_skips_and_errors() -> None:
    assert rules(BAD) == ["FromAsCasing", "MaintainerDeprecated"]
    assert rules("# check=skip=FromAsCasing\n" + BAD) == ["MaintainerDeprecated"]
    assert rules("# check=skip=all\n" + BAD) == []
    report = run_checks("# check=error=true\n" + BAD)
    assert report.failed and {f.level for f in report.findings} == {"error"}
    assert report.violation_message() == (
        "lint violation found for rules: FromAsCasing, MaintainerDeprecated"
    )
    with pytest.raises(DockerfileError):
        report.raise_for_violations()
    assert not run_checks(BAD).failed


def test_build_arg_and_argument_replace_the_directive() -> None:
    src = "# check=skip=all\n" + BAD
    assert rules(src, build_args={"BUILDKIT_DOCKERFILE_CHECK": "skip=MaintainerDeprecated"}) == [
        "FromAsCasing"
    ]
    assert rules(src, check="error=false") == ["FromAsCasing", "MaintainerDeprecated"]


def test_errors_are_reported_not_raised() -> None:
    report = run_checks("FROM alpine:3.20 as a\nFROM alpine:3.20 AS a\nUSER x\n")
    assert report.error is not None and "duplicate stage name" in report.error.message
    assert [f.rule.name for f in report.findings] == ["FromAsCasing", "DuplicateStageName"]
    assert report.failed
    report = run_checks("FROM alpine\nRUN --bogus x\n")
    assert report.error is not None and report.error.line == 2
    assert run_checks("").error is not None


def test_text_and_json_output() -> None:
    report = run_checks(BAD, file="app.Dockerfile")
    text = format_text(report).splitlines()
    assert text[0] == (
        "app.Dockerfile:1: warning: FromAsCasing: 'as' and 'FROM' keywords' casing do not match"
    )
    assert text[1].startswith("    fix: ")
    assert text[2] == "    https://docs.docker.com/go/dockerfile/rule/from-as-casing/"
    assert text[-1] == "Check complete, 2 warnings have been found!"
    assert format_text(run_checks("FROM alpine:3.20\nUSER a\n")).endswith(
        "Check complete, no warnings found."
    )
    doc = format_json(report)
    first = doc["warnings"][0]
    assert first["ruleName"] == "FromAsCasing"
    assert first["detail"] == "'as' and 'FROM' keywords' casing do not match"
    assert first["location"]["ranges"] == [{"start": {"line": 1}, "end": {"line": 1}}]
    assert doc["sources"] == [{"filename": "app.Dockerfile", "language": "Dockerfile"}]
    json.dumps(doc)


def _gantry(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", "--root", str(cwd / "root"), "lint", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(BAD)
    done = _gantry(".", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Dockerfile:1: warning: FromAsCasing:")
    done = _gantry("--format", "json", "--build-arg", "NOPE=1", ".", cwd=tmp_path)
    names = [w["ruleName"] for w in json.loads(done.stdout)["warnings"]]
    assert names == ["FromAsCasing", "MaintainerDeprecated", "UnconsumedBuildArgs"]
    done = _gantry("-f", "-", ".", cwd=tmp_path, stdin="# check=error=true\n" + BAD)
    assert done.returncode == 1
    assert (
        "ERROR: lint violation found for rules: FromAsCasing, MaintainerDeprecated" in done.stderr
    )
    done = _gantry("-f", "missing.Dockerfile", ".", cwd=tmp_path)
    assert done.returncode == 1 and "failed to read dockerfile" in done.stderr
    done = _gantry("--list-rules", cwd=tmp_path)
    assert "UndefinedVar\tbuildkit\t" in done.stdout and "RunsAsRoot\tgantry\t" in done.stdout


GOLDEN = CONFORMANCE / "buildkit" / "parser" / "testfiles"
CASES = sorted(p.name for p in GOLDEN.iterdir()) if GOLDEN.is_dir() else []


@pytest.mark.parametrize("case", CASES)
def test_golden_dockerfiles_do_not_crash(case: str) -> None:
    data = (GOLDEN / case / "Dockerfile").read_bytes()
    report = run_checks(data, file="Dockerfile", base_env=lambda image: {})
    format_text(report)
    json.dumps(format_json(report))


def test_golden_count() -> None:
    assert len(CASES) == 33


# a few findings, pinned: (case, rule, line)
SNAPSHOT = [
    ("brimstone-consuldock", "LegacyKeyValueFormat", 4),
    ("brimstone-consuldock", "NoEmptyContinuation", 26),
    ("continueIndent", "NoEmptyContinuation", 36),
    ("influxdb", "JSONArgsRecommended", 10),
    ("lk4d4-the-edge-case-generator", "MultipleInstructionsDisallowed", 28),
    ("mail", "JSONArgsRecommended", 16),
    ("nginx", "LegacyKeyValueFormat", 2),
]


@pytest.mark.parametrize(("case", "rule", "line"), SNAPSHOT)
def test_golden_snapshot(case: str, rule: str, line: int) -> None:
    data = (GOLDEN / case / "Dockerfile").read_bytes()
    report = run_checks(data, file="Dockerfile", base_env=lambda image: {})
    assert (rule, line) in [(f.rule.name, f.line) for f in report.findings]


def test_golden_errors_are_buildkits() -> None:
    data = (GOLDEN / "flags" / "Dockerfile").read_bytes()
    report = run_checks(data)
    assert report.error is not None and "unknown flag: --user" in report.error.message
    data = (GOLDEN / "json" / "Dockerfile").read_bytes()
    assert run_checks(data).error is not None
