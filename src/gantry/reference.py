"""Image references: ``ubuntu`` -> ``docker.io/library/ubuntu:latest``.

A faithful implementation of distribution/reference, the package Docker uses:
the same grammar, the same normalization (Docker Hub's ``docker.io`` domain and
``library/`` namespace), the same familiar (short) form for display, and the
same error messages, raised as :class:`~gantry.errors.InvalidReference`.

Grammar (distribution/reference)::

    reference      := name [ ":" tag ] [ "@" digest ]
    name           := [domain '/'] remote-name
    domain         := host [':' port-number]
    host           := domain-name | IPv4address | \\[ IPv6address \\]
    remote-name    := path-component ['/' path-component]*
    path-component := alpha-numeric [separator alpha-numeric]*
    alpha-numeric  := /[a-z0-9]+/
    separator      := /[_.]|__|[-]+/
    tag            := /[\\w][\\w.-]{0,127}/
    digest         := algorithm ":" hex   (32 or more hex digits)

Entry points, with their Go names:

* :func:`parse` -- ``ParseNormalizedNamed``: what ``docker pull NAME`` accepts;
* :func:`parse_docker_ref` -- ``ParseDockerRef``: adds ``:latest`` unless a digest
  is given, and drops the tag when both are;
* :func:`parse_any` -- ``ParseAnyReference``: a bare 64-hex ID or ``sha256:...``
  is a digest, anything else a name;
* :func:`parse_strict` -- ``ParseNamed``: the input must already be canonical;
* :func:`parse_raw` -- ``Parse``: grammar only, no normalization.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

from gantry.digest import ALGORITHMS, Digest
from gantry.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

# Messages exactly as distribution/reference and go-digest word them.
ERR_REFERENCE_INVALID_FORMAT = "invalid reference format"
ERR_TAG_INVALID_FORMAT = "invalid tag format"
ERR_DIGEST_INVALID_FORMAT = "invalid digest format"
ERR_NAME_CONTAINS_UPPERCASE = "repository name must be lowercase"
ERR_NAME_EMPTY = "repository name must have at least one component"
ERR_NAME_TOO_LONG = f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
ERR_NAME_NOT_CANONICAL = "repository name must be canonical"
ERR_CHECKSUM_FORMAT = "invalid checksum digest format"
ERR_CHECKSUM_LENGTH = "invalid checksum digest length"
ERR_CHECKSUM_UNSUPPORTED = "unsupported digest algorithm"

# --- the grammar ------------------------------------------------------------------
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PORT = r"(?::[0-9]+)?"
_TAG = r"[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}"  # Go's \w is ASCII-only
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_HOST = f"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN_AND_PORT = _HOST + _PORT
_PATH_COMPONENT = _ALNUM + f"(?:{_SEPARATOR}{_ALNUM})*"
_REMOTE_NAME = _PATH_COMPONENT + f"(?:/{_PATH_COMPONENT})*"
_NAME = f"(?:{_DOMAIN_AND_PORT}/)?{_REMOTE_NAME}"

#: Use with ``fullmatch``. DOMAIN_RE: a registry host[:port].
DOMAIN_RE = re.compile(_DOMAIN_AND_PORT)
#: groups: domain (or None), remote name (path)
NAME_RE = re.compile(f"(?:({_DOMAIN_AND_PORT})/)?({_REMOTE_NAME})")
#: groups: name, tag, digest
REFERENCE_RE = re.compile(f"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
TAG_RE = re.compile(_TAG)
DIGEST_RE = re.compile(_DIGEST)
REMOTE_NAME_RE = re.compile(_REMOTE_NAME)
#: A full image ID without algorithm: 64 lower-case hex digits.
IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_ID_LIKE_RE = re.compile(r"(?:sha256:)?[a-f0-9]{1,64}")


def _error(message: str) -> InvalidReference:
    return InvalidReference(message)


@dataclass(frozen=True, slots=True)
class Reference:
    """A named image reference. ``domain`` is "" only for un-normalized (``parse_raw``)
    names; ``tag`` and ``digest`` are None when absent."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``docker.io/library/ubuntu`` (domain and path)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def familiar_name(self) -> str:
        """The short name Docker displays: ``ubuntu``, ``user/app``, ``gcr.io/x/y``."""
        domain, path = self.domain, self.path
        if domain != DEFAULT_DOMAIN:
            return f"{domain}/{path}"
        if path.startswith(OFFICIAL_REPO_PREFIX):
            rest = path[len(OFFICIAL_REPO_PREFIX) :]
            if "/" not in rest:
                return rest
        # Docker would print docker.io/foo.bar/app as "foo.bar/app", which reads back as
        # the registry foo.bar; keep the domain whenever the short form would be misread.
        if split_docker_domain(path)[0] != DEFAULT_DOMAIN:
            return f"{domain}/{path}"
        return path

    def familiar(self) -> str:
        """The familiar string: ``ubuntu:latest``, ``user/app@sha256:...``."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        s = f":{self.tag}" if self.tag is not None else ""
        return s + (f"@{self.digest}" if self.digest is not None else "")

    def __str__(self) -> str:
        return self.name + self._suffix()

    @property
    def is_name_only(self) -> bool:
        return self.tag is None and self.digest is None

    def with_tag(self, tag: str) -> Reference:
        """``WithTag``: the same name (and digest) with ``tag``."""
        if not TAG_RE.fullmatch(tag):
            raise _error(ERR_TAG_INVALID_FORMAT)
        return dataclasses.replace(self, tag=tag)

    def with_digest(self, digest: str) -> Reference:
        """``WithDigest``: the same name (and tag) pinned to ``digest``."""
        if not DIGEST_RE.fullmatch(digest):
            raise _error(ERR_DIGEST_INVALID_FORMAT)
        return dataclasses.replace(self, digest=digest)

    def without_tag(self) -> Reference:
        return dataclasses.replace(self, tag=None)

    def name_only(self) -> Reference:
        """``TrimNamed``: the repository without tag or digest."""
        return dataclasses.replace(self, tag=None, digest=None)

    def tagged_or_latest(self) -> Reference:
        """``TagNameOnly``: add ``:latest`` when neither tag nor digest is given."""
        return self.with_tag(DEFAULT_TAG) if self.is_name_only else self


def _parse_digest(s: str) -> str:
    """go-digest ``Parse`` with its error messages; registered algorithms only."""
    i = s.find(":")
    if i <= 0 or i + 1 == len(s):
        raise _error(ERR_CHECKSUM_FORMAT)
    algorithm, encoded = s[:i], s[i + 1 :]
    size = ALGORITHMS.get(algorithm)
    if size is None:
        if not _GO_DIGEST_RE.fullmatch(s):
            raise _error(ERR_CHECKSUM_FORMAT)
        raise _error(ERR_CHECKSUM_UNSUPPORTED)
    if len(encoded) != size:
        raise _error(ERR_CHECKSUM_LENGTH)
    if not re.fullmatch(r"[a-f0-9]+", encoded):
        raise _error(ERR_CHECKSUM_FORMAT)
    return Digest(s)


def parse_raw(s: str) -> Reference:
    """``Parse``: check the grammar, no normalization (``ubuntu`` stays ``ubuntu``)."""
    m = REFERENCE_RE.fullmatch(s)
    if m is None:
        if s == "":
            raise _error(ERR_NAME_EMPTY)
        if REFERENCE_RE.fullmatch(s.lower()) is not None:
            raise _error(ERR_NAME_CONTAINS_UPPERCASE)
        raise _error(ERR_REFERENCE_INVALID_FORMAT)
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    nm = NAME_RE.fullmatch(name)
    domain, path = (nm.group(1) or "", nm.group(2)) if nm else ("", name)
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise _error(ERR_NAME_TOO_LONG)
    return Reference(domain, path, tag, _parse_digest(digest) if digest else None)


def with_name(name: str) -> Reference:
    """``WithName``: a repository name (no tag, no digest), not normalized."""
    m = NAME_RE.fullmatch(name)
    if m is None:
        raise _error(ERR_REFERENCE_INVALID_FORMAT)
    if len(m.group(2)) > NAME_TOTAL_LENGTH_MAX:
        raise _error(ERR_NAME_TOO_LONG)
    return Reference(m.group(1) or "", m.group(2))


def split_docker_domain(name: str) -> tuple[str, str]:
    """Split a familiar name into (domain, remainder), Docker Hub defaults applied."""
    first, sep, rest = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if first == "localhost":
        domain, remainder = first, rest
    elif first == LEGACY_DEFAULT_DOMAIN:
        domain, remainder = DEFAULT_DOMAIN, rest
    elif "." in first or ":" in first or first.lower() != first:
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(s: str) -> Reference:
    """``ParseNormalizedNamed``: ``ubuntu`` -> ``docker.io/library/ubuntu``.

    No tag is added (see :func:`parse_docker_ref`). Raises InvalidReference with
    Docker's words, e.g. ``invalid reference format: repository name
    (library/Ubuntu) must be lowercase``.
    """
    if IDENTIFIER_RE.fullmatch(s):
        raise _error(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = split_docker_domain(s)
    remote_name = remainder.split(":", 1)[0]
    if remote_name.lower() != remote_name:
        raise _error(
            f"{ERR_REFERENCE_INVALID_FORMAT}: repository name ({remote_name}) must be lowercase"
        )
    return parse_raw(f"{domain}/{remainder}")


def parse_docker_ref(s: str) -> Reference:
    """``ParseDockerRef``: normalized, ``:latest`` added when no tag or digest is
    given, and only the digest kept when both are."""
    ref = parse(s)
    if ref.digest is not None:
        return ref.without_tag()
    return ref.tagged_or_latest()


def parse_any(s: str) -> Reference | Digest:
    """``ParseAnyReference``: a 64-hex ID or a valid digest is a Digest, else a name."""
    if IDENTIFIER_RE.fullmatch(s):
        return Digest("sha256:" + s)
    try:
        return Digest(_parse_digest(s))
    except InvalidReference:
        pass
    return parse(s)


def parse_strict(s: str) -> Reference:
    """``ParseNamed``: like :func:`parse` but ``s`` must already be canonical
    (``docker.io/library/ubuntu``, not ``ubuntu``)."""
    ref = parse(s)
    if str(ref) != s:
        raise _error(ERR_NAME_NOT_CANONICAL)
    return ref


def is_id_like(s: str) -> bool:
    """Whether ``s`` could be an image ID or an ID prefix (``3f2a``, ``sha256:3f2a...``).

    Docker tries such a string as a name first and falls back to an ID-prefix
    lookup; a full 64-hex string can only be an ID.
    """
    return bool(_ID_LIKE_RE.fullmatch(s))


def validate_repository(path: str) -> str:
    """Validate a repository name as a registry sees it (``library/ubuntu``, no
    domain, tag or digest); return it. For the registry server's ``<name>``."""
    if path == "":
        raise _error(ERR_NAME_EMPTY)
    if not REMOTE_NAME_RE.fullmatch(path):
        if REMOTE_NAME_RE.fullmatch(path.lower()):
            raise _error(ERR_NAME_CONTAINS_UPPERCASE)
        raise _error(ERR_REFERENCE_INVALID_FORMAT)
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise _error(ERR_NAME_TOO_LONG)
    return path


def validate_tag(tag: str) -> str:
    """Validate a tag (``[\\w][\\w.-]{0,127}``); return it."""
    if not TAG_RE.fullmatch(tag):
        raise _error(ERR_TAG_INVALID_FORMAT)
    return tag


# --- FamiliarMatch -------------------------------------------------------------------


def familiar_match(pattern: str, ref: Reference) -> bool:
    """``FamiliarMatch``: Go ``path.Match`` of ``pattern`` against the familiar string,
    or against the familiar name (``docker images --filter reference=PATTERN``)."""
    return path_match(pattern, ref.familiar()) or path_match(pattern, ref.familiar_name)


def path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match``: ``*`` and ``?`` stop at ``/``, ``[...]`` classes with ``^``
    negation and ranges, ``\\`` escapes. Raises InvalidReference on a bad pattern."""
    return _compile_glob(pattern).fullmatch(name) is not None


@functools.lru_cache(maxsize=256)
def _compile_glob(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i, n = 0, len(pattern)
    bad = InvalidReference(f"syntax error in pattern: {pattern}")
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i >= n:
                raise bad
            out.append(re.escape(pattern[i]))
        elif c == "[":
            i += 1
            negate = i < n and pattern[i] == "^"
            if negate:
                i += 1
            items: list[str] = []
            first = True
            while True:
                if i >= n:
                    raise bad
                if pattern[i] == "]" and not first:
                    break
                first = False
                lo, i = _class_char(pattern, i, bad)
                if i < n and pattern[i] == "-":
                    hi, i = _class_char(pattern, i + 1, bad)
                    if hi < lo:
                        raise bad
                    items.append(f"{re.escape(lo)}-{re.escape(hi)}")
                else:
                    items.append(re.escape(lo))
            body = "".join(items)
            # Go's classes (unlike * and ?) may match "/".
            out.append(f"[^{body}]" if negate else f"[{body}]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _class_char(pattern: str, i: int, bad: InvalidReference) -> tuple[str, int]:
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        raise bad
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            raise bad
    return pattern[i], i + 1
