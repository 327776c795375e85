"""Where the registry keeps what, as storage-driver paths.

::

    blobs/<alg>/<hex[:2]>/<hex>/data                      every blob and manifest, once
    repositories/<name>/_layers/<alg>/<hex>/link          blob linked into the repository
    repositories/<name>/_manifests/revisions/<alg>/<hex>/link   manifest record (JSON)
    repositories/<name>/_manifests/tags/<tag>/current/link      digest the tag points at
    repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>      referrer descriptor (JSON)
    repositories/<name>/_uploads/<id>/data                upload in progress
    repositories/<name>/_uploads/<id>/startedat

Repository path components never start with "_" (the name grammar forbids it),
so the underscore directories cannot collide with nested repository names.
"""

from __future__ import annotations

from gantry.digest import Digest

BLOBS = "blobs"
REPOS = "repositories"


def blob_dir(d: Digest) -> str:
    return f"{BLOBS}/{d.algorithm}/{d.hex[:2]}/{d.hex}"


def blob_data(d: Digest) -> str:
    return f"{blob_dir(d)}/data"


def repo(name: str) -> str:
    return f"{REPOS}/{name}"


def layer_link(name: str, d: Digest) -> str:
    return f"{REPOS}/{name}/_layers/{d.algorithm}/{d.hex}/link"


def layers_dir(name: str) -> str:
    return f"{REPOS}/{name}/_layers"


def revision_link(name: str, d: Digest) -> str:
    return f"{REPOS}/{name}/_manifests/revisions/{d.algorithm}/{d.hex}/link"


def revisions_dir(name: str) -> str:
    return f"{REPOS}/{name}/_manifests/revisions"


def tags_dir(name: str) -> str:
    return f"{REPOS}/{name}/_manifests/tags"


def tag_link(name: str, tag: str) -> str:
    return f"{REPOS}/{name}/_manifests/tags/{tag}/current/link"


def tag_dir(name: str, tag: str) -> str:
    return f"{REPOS}/{name}/_manifests/tags/{tag}"


def manifests_dir(name: str) -> str:
    return f"{REPOS}/{name}/_manifests"


def referrers_dir(name: str, subject: Digest) -> str:
    return f"{REPOS}/{name}/_referrers/{subject.algorithm}/{subject.hex}"


def referrer_entry(name: str, subject: Digest, d: Digest) -> str:
    return f"{referrers_dir(name, subject)}/{d.algorithm}-{d.hex}"


def uploads_dir(name: str) -> str:
    return f"{REPOS}/{name}/_uploads"


def upload_dir(name: str, upload_id: str) -> str:
    return f"{REPOS}/{name}/_uploads/{upload_id}"


def upload_data(name: str, upload_id: str) -> str:
    return f"{REPOS}/{name}/_uploads/{upload_id}/data"


def upload_started(name: str, upload_id: str) -> str:
    return f"{REPOS}/{name}/_uploads/{upload_id}/startedat"


def layer_dir_of(name: str, d: Digest) -> str:
    return f"{REPOS}/{name}/_layers/{d.algorithm}/{d.hex}"


def revision_dir_of(name: str, d: Digest) -> str:
    return f"{REPOS}/{name}/_manifests/revisions/{d.algorithm}/{d.hex}"
