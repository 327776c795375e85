"""Which ``ADD`` sources are remote: HTTP(S) URLs and Git repositories.

BuildKit's rules (``isHTTPSource`` and gitutil's ``ParseGitRef``): a source is an HTTP
source when it starts with ``http://`` or ``https://``; it is a Git source when it starts
with ``git://``, ``ssh://`` or ``github.com/``, is scp-like (``git@github.com:org/repo``),
or is an HTTP(S) URL whose path ends in ``.git`` (an optional ``#ref:subdir`` follows).
Everything else is a path in the build context (or the ``--from`` stage).
"""

from __future__ import annotations

import re

__all__ = ["is_git_source", "is_http_source", "is_remote_source"]

_SCP_LIKE = re.compile(r"^[A-Za-z0-9_-]+@[A-Za-z0-9.-]+:", re.ASCII)
_HTTP_GIT = re.compile(r"^https?://[^#?]*\.git(?:#.*)?$", re.ASCII | re.DOTALL)


def is_http_source(src: str) -> bool:
    """``http://...`` or ``https://...`` (case-sensitive, as BuildKit)."""
    return src.startswith(("http://", "https://"))


def is_git_source(src: str) -> bool:
    """A Git repository reference ``ADD`` would clone."""
    if src.startswith(("git://", "ssh://", "github.com/")):
        return True
    if _SCP_LIKE.match(src):
        return True
    return _HTTP_GIT.match(src) is not None


def is_remote_source(src: str) -> bool:
    """Fetched over the network rather than read from the context."""
    return is_http_source(src) or is_git_source(src)
