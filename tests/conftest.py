"""Shared fixtures. Conformance data comes from ../shared/conformance (beside the project)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(os.environ.get("GANTRY_CONFORMANCE", PROJECT.parent / "shared" / "conformance"))


@pytest.fixture(scope="session")
def conformance() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.fail(f"conformance data not found at {CONFORMANCE}")
    return CONFORMANCE


_TABLES: dict[str, Any] | None = None


def go_tables() -> dict[str, Any]:
    """The go-tables.json object (table name -> {source, test, semantics, cases})."""
    global _TABLES
    if _TABLES is None:
        _TABLES = json.loads((CONFORMANCE / "go-tables.json").read_text())
    return _TABLES


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh, empty gantry store root."""
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def shm_tmp() -> Iterator[Path]:
    """A temporary directory on tmpfs (the ext4 disk here is slow for many small files)."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="gantry-test-", dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def need(tool: str) -> str:
    """Skip-free lookup: a missing peer is a set-up bug, so fail loudly."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; run `make setup`")
    return path
