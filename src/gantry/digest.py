"""Content digests (OCI image-spec ``descriptor.md#digests``).

A digest is ``algorithm:encoded``. We accept the registered algorithms sha256
and sha512 (lower-case hex of the exact length) and refuse everything else with
:class:`~gantry.errors.InvalidDigest` -- a digest always comes from outside
(a manifest, a URL, a file name) and is never trusted.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from gantry.errors import DigestMismatch, InvalidDigest

#: algorithm -> length of the hex encoding
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}

# The grammar from the image spec; registered algorithms are checked on top.
_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX = re.compile(r"^[a-f0-9]+$")

CHUNK = 1 << 20


class Digest(str):
    """A validated digest string. Compares and hashes like the plain string."""

    __slots__ = ()

    def __new__(cls, value: str) -> Digest:
        if isinstance(value, Digest):
            return value
        validate(value)
        return super().__new__(cls, value)

    @property
    def algorithm(self) -> str:
        return self.split(":", 1)[0]

    @property
    def hex(self) -> str:
        return self.split(":", 1)[1]

    @property
    def short(self) -> str:
        """The 12-character hex prefix Docker shows as an image ID."""
        return self.hex[:12]


def validate(value: str) -> None:
    """Raise :class:`InvalidDigest` unless ``value`` is a supported digest."""
    if not isinstance(value, str) or not _GRAMMAR.match(value):
        raise InvalidDigest(f"invalid digest format: {value!r}")
    algorithm, encoded = value.split(":", 1)
    length = ALGORITHMS.get(algorithm)
    if length is None:
        raise InvalidDigest(f"unsupported digest algorithm: {algorithm}")
    if len(encoded) != length or not _HEX.match(encoded):
        raise InvalidDigest(f"invalid checksum digest length or format: {value}")


def is_digest(value: str) -> bool:
    try:
        validate(value)
    except InvalidDigest:
        return False
    return True


def new_hasher(algorithm: str = "sha256") -> hashlib._Hash:
    if algorithm not in ALGORITHMS:
        raise InvalidDigest(f"unsupported digest algorithm: {algorithm}")
    return hashlib.new(algorithm)


def of_bytes(data: bytes, algorithm: str = "sha256") -> Digest:
    h = new_hasher(algorithm)
    h.update(data)
    return Digest(f"{algorithm}:{h.hexdigest()}")


def of_file(f: BinaryIO, algorithm: str = "sha256") -> Digest:
    h = new_hasher(algorithm)
    while chunk := f.read(CHUNK):
        h.update(chunk)
    return Digest(f"{algorithm}:{h.hexdigest()}")


def from_hasher(h: hashlib._Hash) -> Digest:
    return Digest(f"{h.name}:{h.hexdigest()}")


def verify(data: bytes, expected: str) -> Digest:
    """Return ``expected`` as a Digest if ``data`` hashes to it, else raise."""
    want = Digest(expected)
    got = of_bytes(data, want.algorithm)
    if got != want:
        raise DigestMismatch(f"digest mismatch: expected {want}, got {got}")
    return want
