from __future__ import annotations

import io

import pytest

from gantry import digest
from gantry.errors import DigestMismatch, InvalidDigest

EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_of_bytes_and_file() -> None:
    assert digest.of_bytes(b"") == EMPTY
    assert digest.of_file(io.BytesIO(b"")) == EMPTY
    d = digest.Digest(EMPTY)
    assert d.algorithm == "sha256" and d.hex.startswith("e3b0") and d.short == "e3b0c44298fc"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sha256",
        "sha256:",
        "sha256:abc",
        "SHA256:" + "a" * 64,
        "sha256:" + "A" * 64,
        "md5:" + "a" * 32,
        "sha512:" + "a" * 64,
        "sha256:" + "a" * 63 + "g",
        "sha256:../../etc/passwd",
    ],
)
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidDigest):
        digest.Digest(bad)
    assert not digest.is_digest(bad)


def test_sha512() -> None:
    d = digest.of_bytes(b"x", "sha512")
    assert d.algorithm == "sha512" and len(d.hex) == 128


def test_verify() -> None:
    assert digest.verify(b"", EMPTY) == EMPTY
    with pytest.raises(DigestMismatch):
        digest.verify(b"x", EMPTY)
