"""The room rules of DESIGN.md, enforced: imports between gantry's packages go downward only.

Every ``import gantry.X`` / ``from gantry.X import`` anywhere in a module (lazy imports inside
functions included) must name a room that module's room is allowed to use.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "gantry"

BASE = {"errors", "config", "__version__"}
# room -> rooms it may import (besides itself and BASE)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "config": set(),
    "timeutil": set(),
    "digest": set(),
    "reference": {"digest"},
    "oci": {"digest", "reference"},
    "content": {"digest"},
    "layers": {"digest", "oci"},
    "dockerfile": {"digest", "reference", "oci"},
    "runtime": {"digest", "reference", "oci", "layers"},
    "store": {"digest", "reference", "oci", "content", "layers", "timeutil"},
    "registry": {"digest", "reference", "oci", "timeutil"},
    "distribution": {"digest", "reference", "oci", "content", "layers", "store", "timeutil"},
    "archive": {
        "digest",
        "reference",
        "oci",
        "content",
        "layers",
        "store",
        "dockerfile",
        "timeutil",
    },
    "build": {
        "digest",
        "reference",
        "oci",
        "content",
        "layers",
        "store",
        "dockerfile",
        "runtime",
        "archive",
        "distribution",
        "timeutil",
    },
    "containers": {
        "digest",
        "reference",
        "oci",
        "content",
        "layers",
        "store",
        "runtime",
        "archive",
        "timeutil",
    },
}


def _room(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imported_rooms(tree: ast.AST) -> set[str]:
    rooms: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "gantry" and len(parts) > 1:
                    rooms.add(parts[1])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "gantry":
                continue
            if len(parts) > 1:
                rooms.add(parts[1])
            else:
                rooms.update(a.name for a in node.names)
    return rooms


def _modules() -> list[Path]:
    return sorted(
        p
        for p in SRC.rglob("*.py")
        if p.parent != SRC or p.name not in ("__init__.py", "__main__.py")
    )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_go_downward(path: Path) -> None:
    room = _room(path)
    if room == "cli":
        return  # the CLI is the top room: it may use every room
    assert room in ALLOWED, (
        f"{room} is not a known room: add it to ALLOWED (and DESIGN/architecture docs)"
    )
    used = _imported_rooms(ast.parse(path.read_text(), str(path))) - {room} - BASE
    bad = used - ALLOWED[room]
    assert not bad, (
        f"{path.relative_to(SRC)} ({room}) imports {sorted(bad)}, which sits above or beside it"
    )


def test_rule_can_fail() -> None:
    tree = ast.parse("from gantry.store import Store\nimport gantry.cli.main\n")
    assert _imported_rooms(tree) == {"store", "cli"}
