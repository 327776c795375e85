"""OCI whiteout names and overlayfs markers (image-spec ``layer.md#whiteouts``)."""

from __future__ import annotations

import os

#: ``.wh.<name>`` in a layer hides ``<name>`` of the layers below.
PREFIX = b".wh."
#: ``<dir>/.wh..wh..opq`` hides everything of the layers below in ``<dir>``.
OPAQUE = b".wh..wh..opq"
#: ``.wh..wh.*`` names other than OPAQUE are AUFS bookkeeping: never extracted.
META_PREFIX = b".wh..wh."

#: overlayfs xattrs, in the privileged (``trusted.``) and unprivileged (``user.``) namespaces.
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


def opaque_xattr(privileged: bool | None = None) -> str:
    """The xattr marking an opaque overlay directory (``trusted.`` as root, ``user.`` rootless)."""
    if privileged is None:
        privileged = os.geteuid() == 0
    return "trusted.overlay.opaque" if privileged else "user.overlay.opaque"
