"""How the store reads image names: the few :mod:`gantry.reference` calls it needs.

Tags are stored in full normalized form (``docker.io/library/ubuntu:latest``),
repo digests as ``docker.io/library/ubuntu@sha256:...``; users see the familiar
form (``ubuntu:latest``), as in Docker.
"""

from __future__ import annotations

from dataclasses import dataclass

from gantry import reference
from gantry.digest import Digest
from gantry.errors import InvalidReference


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a user's image argument means (Docker's ``ParseAnyReference``)."""

    id: Digest | None = None  #: a full image ID (``sha256:<64>`` or 64 hex)
    ref: str | None = None  #: full name with tag or digest (``:latest`` added)
    repository: str | None = None  #: full name without tag/digest
    digested: bool = False
    familiar: str = ""  #: how Docker echoes it in "No such image: ..."


def lookup(spec: str) -> Lookup:
    """Parse an image argument; raises InvalidReference if it is neither a name nor an ID."""
    r = reference.parse_any(spec)
    if not isinstance(r, reference.Reference):  # a bare digest: an image ID
        dg = Digest(r)
        return Lookup(id=dg, familiar=str(dg))
    # the stored form: name:tag, or name@digest (a tag next to a digest is ignored)
    stored = r.without_tag() if r.digest is not None else r.tagged_or_latest()
    return Lookup(
        ref=str(stored),
        repository=r.name,
        digested=r.digest is not None,
        familiar=r.tagged_or_latest().familiar(),
    )


def tag_name(target: str) -> str:
    """The full name a ``tag`` target is stored under; refuses digests as Docker does."""
    r = reference.parse(target)
    if r.digest is not None:
        raise InvalidReference("refusing to create a tag with a digest reference")
    return str(r.tagged_or_latest())


def repo_digest_name(name: str, digest: str) -> str:
    """``docker.io/library/x@sha256:...`` for repository ``name`` (any form) and ``digest``."""
    r = reference.parse(name)
    return f"{r.name}@{Digest(digest)}"


def familiar(full: str) -> str:
    """``docker.io/library/ubuntu:latest`` -> ``ubuntu:latest``."""
    return reference.parse(full).familiar()


def repository_of(full: str) -> str:
    """The name part of a stored tag or repo digest."""
    return reference.parse(full).name
