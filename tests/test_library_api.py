from __future__ import annotations

import subprocess
import sys

import pytest

import gantry


@pytest.mark.parametrize("name", [n for n in gantry.__all__ if n != "__version__"])
def test_public_names_resolve(name: str) -> None:
    assert callable(getattr(gantry, name))


def test_unknown_name() -> None:
    with pytest.raises(AttributeError):
        _ = gantry.nope  # type: ignore[attr-defined]  # asserting the miss is the point


def test_import_is_lazy() -> None:
    code = "import sys, gantry; print(any(m.startswith(('gantry.store', 'aiohttp', 'urllib3')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
