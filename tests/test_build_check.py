"""``gantry build --check`` and the check warnings a normal build prints (BuildKit's format)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gantry.build.report import excerpt, format_warnings, unconsumed_warning
from gantry.store import Store
from test_build_support import add_busybox, gantry, need_root

URL = "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"


@pytest.fixture
def store_root(root: Path, tmp_path: Path) -> Path:
    need_root()
    with Store(root) as s:
        add_busybox(s, tmp_path)
    return root


def ctx_with(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def test_check_reports_findings_with_source_and_exits_1(store_root: Path, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, "FROM busybox\nRUN true\nCMD echo hi\n")
    r = gantry(store_root, "build", "--check", str(ctx))
    out = r.stdout.decode()
    assert r.returncode == 1, r.stderr.decode()
    assert out.startswith("Check complete, 1 warning has been found!\n\n")
    assert f"WARNING: JSONArgsRecommended - {URL}\n" in out
    assert "JSON arguments recommended for CMD to prevent unintended behavior" in out
    assert "Dockerfile:3\n--------------------\n" in out
    assert "   3 | >>> CMD echo hi\n" in out
    assert "   1 |     FROM busybox\n" in out
    with Store(store_root) as s:
        assert len(s.images()) == 1  # nothing was built


def test_check_clean_and_json(store_root: Path, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, 'FROM busybox\nCMD ["sh"]\n')
    r = gantry(store_root, "build", "--check", str(ctx))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode() == "Check complete, no warnings found.\n"
    (ctx / "Dockerfile").write_text("FROM busybox AS Build\nCMD echo hi\n")
    r = gantry(store_root, "build", "--call=check,format=json", str(ctx))
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert sorted(w["ruleName"] for w in doc["warnings"]) == [
        "JSONArgsRecommended",
        "StageNameCasing",
    ]
    assert doc["sources"][0]["filename"] == "Dockerfile"


def test_check_of_a_broken_dockerfile_names_the_line(store_root: Path, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, "FROM busybox\nCOPY --from=7 /x /x\n")
    r = gantry(store_root, "build", "--check", str(ctx))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert ">>> COPY --from=7 /x /x" in err
    assert "invalid stage index 7" in err


def test_build_prints_warnings_and_unconsumed_args(store_root: Path, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, "FROM busybox\nARG USED=1\nCMD echo hi\n")
    r = gantry(
        store_root,
        "build",
        "--progress=plain",
        "--build-arg",
        "USED=2",
        "--build-arg",
        "NOPE=1",
        "--build-arg",
        "ALSO=1",
        str(ctx),
    )
    assert r.returncode == 0, r.stderr.decode()
    err = r.stderr.decode()
    assert "[Warning] One or more build-args [ALSO NOPE] were not consumed\n" in err
    assert " 1 warning found:\n - JSONArgsRecommended: JSON arguments recommended" in err
    assert "(line 3)\n" in err
    q = gantry(store_root, "build", "-q", "--build-arg", "NOPE=1", str(ctx))
    assert q.returncode == 0
    assert q.stderr.decode() == ""  # quiet prints the image ID only


def test_check_error_true_fails_the_build_before_any_step(store_root: Path, tmp_path: Path) -> None:
    ctx = ctx_with(tmp_path, "# check=error=true\nFROM busybox\nRUN echo ran-a-step\nCMD echo hi\n")
    r = gantry(store_root, "build", "--progress=plain", str(ctx))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "lint violation found for rules: JSONArgsRecommended" in err
    assert "ran-a-step" not in err
    (ctx / "Dockerfile").write_text(
        "# check=error=true;skip=JSONArgsRecommended\nFROM busybox\nCMD echo hi\n"
    )
    assert gantry(store_root, "build", "-q", str(ctx)).returncode == 0


def test_excerpt_context_like_buildkit() -> None:
    src = [f"line{i}" for i in range(1, 11)]
    one = excerpt("Dockerfile", src, 5)
    assert one[0] == "Dockerfile:5"
    assert one[2:7] == [
        "   3 |     line3",
        "   4 |     line4",
        "   5 | >>> line5",
        "   6 |     line6",
        "   7 |     line7",
    ]
    assert one[-1] == "-" * 20
    rng = excerpt("Dockerfile", src, 4, 5)
    assert rng[0] == "Dockerfile:4-5"
    assert [x[:9] for x in rng[2:-1]] == ["   3 |   ", "   4 | >>", "   5 | >>", "   6 |   "]
    first = excerpt("Dockerfile", src, 1)
    assert [x.split("|")[0].strip() for x in first[2:-1]] == ["1", "2", "3"]
    assert excerpt("Dockerfile", src, 11) == []
    assert format_warnings([]) == "" and unconsumed_warning([]) == ""
