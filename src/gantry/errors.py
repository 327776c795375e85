"""Every error gantry raises on purpose, in one place.

Library code raises these; the CLI renders them once (``Error: <message>``,
plus an optional ``hint:`` line) and exits with ``exit_code``. Messages follow
Docker's wording where Docker has one, so scripts that grep for it keep working.
"""

from __future__ import annotations


class GantryError(Exception):
    """Base class. ``str(err)`` is the one-line message shown to the user."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(GantryError):
    """Bad flags or arguments (Docker exits 125 for these on `run`, 1 elsewhere)."""


class InvalidReference(GantryError):
    """An image name, tag or digest that does not parse."""


class InvalidDigest(GantryError):
    """A digest string that is malformed or uses an unsupported algorithm."""


class DigestMismatch(GantryError):
    """Bytes did not hash to the digest they were announced with."""


class NotFound(GantryError):
    """Something asked for by name does not exist."""


class ImageNotFound(NotFound):
    """``No such image: NAME``."""


class BlobNotFound(NotFound):
    """A blob is missing from the content store."""


class Conflict(GantryError):
    """The operation would break something that depends on the target (Docker's 409)."""


class InvalidManifest(GantryError):
    """A manifest, index, config or descriptor failed validation."""


class UnsafeArchive(GantryError):
    """A tar entry tried to leave its root, pass through a symlink, or otherwise escape."""


class InvalidArchive(GantryError):
    """An archive (tar, docker-archive, OCI layout) is malformed or truncated."""


class StoreError(GantryError):
    """The local store is unusable (locked, corrupt, wrong version)."""


class DockerfileError(GantryError):
    """A Dockerfile that cannot be parsed or planned; carries file and line."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line


class ExpansionError(GantryError):
    """Shell-word expansion failed (bad substitution, ``${v:?msg}`` unset...)."""


class IgnorePatternError(GantryError):
    """A ``.dockerignore`` pattern is malformed."""


class TemplateError(GantryError):
    """A ``--format`` Go template failed to parse or execute."""


class BuildError(GantryError):
    """A build step failed."""


class RegistryError(GantryError):
    """A registry answered with an error; ``code`` is the spec's error code."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.status = status


class RegistryAPIError(RegistryError):
    """An error a registry server answers with: ``message`` is the code's fixed text
    (what clients show), ``detail`` says which tag, digest or name (JSON-able)."""

    def __init__(self, message: str, *, code: str, status: int, detail: object = None) -> None:
        super().__init__(message, code=code, status=status)
        self.detail = detail

    def __str__(self) -> str:
        if self.detail is None or self.detail == "":
            return self.message
        return f"{self.message}: {self.detail}"


class ContainerError(GantryError):
    """A container could not be created, started or managed."""

    exit_code = 125
