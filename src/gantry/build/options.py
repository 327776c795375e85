"""What a build is asked to do: :class:`BuildOptions`.

Kept apart from the solver so that the CLI can describe a build (and ask the build
memo whether it is already done) without importing the solver and the frontend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gantry.dockerfile.checks import Finding
    from gantry.store import Image


@dataclass
class BuildOptions:
    context: Path
    dockerfile: Path | None = None
    dockerfile_text: bytes | None = None
    tags: Sequence[str] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    network: str = "default"
    source_date_epoch: int | None = None
    #: run the build checks first (findings in ``BuildResult.warnings``)
    lint: bool = True
    #: ``--secret``: id -> value, for ``RUN --mount=type=secret``
    secrets: Mapping[str, bytes] = field(default_factory=dict)
    #: ``--ssh``: id -> agent socket path, for ``RUN --mount=type=ssh``
    ssh: Mapping[str, str] = field(default_factory=dict)
    #: ``--squash``: the final stage's layers above its base image become one
    squash: bool = False
    #: ``--pull``: fetch every base image from its registry even when it is in the store
    #: (one that is not in the store is always pulled, as docker build does)
    pull: bool = False
    #: ``--build-context NAME=PATH|docker-image://REF``: what FROM/--from NAME means
    build_contexts: Mapping[str, str] = field(default_factory=dict)


@dataclass
class BuildResult:
    image: Image
    steps: int
    cached: int
    #: build-check findings (BuildKit prints them after the build)
    warnings: list[Finding] = field(default_factory=list)
    #: ``--build-arg`` names no ARG declared
    unconsumed_args: list[str] = field(default_factory=list)
