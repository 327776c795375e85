"""Registry operations that never touch the local store.

* :func:`inspect_remote` -- ``image inspect --remote`` (``skopeo inspect``'s record:
  digest, tags, created, platform, labels, env, layers; plus every platform of
  an index);
* :func:`tag_remote` -- ``tag --remote``: a new tag for a manifest already in a
  registry (the manifest is re-put byte for byte; another repository of the same
  registry gets its blobs mounted, not uploaded);
* :func:`search` -- ``search TERM``: the registry's ``/v1/search`` when it has
  one (Docker Hub), otherwise its ``/v2/_catalog`` filtered by the term.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gantry import digest as _digest
from gantry import reference
from gantry.digest import Digest
from gantry.errors import GantryError, InvalidManifest, RegistryError, UsageError
from gantry.oci import mediatypes as mt
from gantry.oci.manifest import Index, Manifest, parse_manifest
from gantry.oci.platform import Platform, host_platform

from .client import RegistryClient
from .pull import _pull_error

__all__ = [
    "RemoteImage",
    "SearchResult",
    "inspect_remote",
    "raw_manifest",
    "search",
    "tag_remote",
]

MAX_CONFIG_SIZE = 8 * 1024 * 1024


@dataclass
class RemoteImage:
    """What ``skopeo inspect`` prints, field for field, plus the index's platforms."""

    name: str
    digest: Digest  #: what the reference resolves to (the index digest for an index)
    manifest_digest: Digest  #: the image manifest chosen for the platform
    media_type: str  #: of the top manifest or index
    repo_tags: list[str]
    created: str | None
    docker_version: str
    labels: dict[str, str] | None
    architecture: str
    os: str
    variant: str | None
    layers: list[str]
    layers_data: list[dict[str, Any]]
    env: list[str] | None  #: None when the config has none (skopeo prints null)
    platforms: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  #: the raw image config

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Name": self.name,
            "Digest": str(self.digest),
            "RepoTags": self.repo_tags,
        }
        if self.created is not None:
            out["Created"] = self.created
        out["DockerVersion"] = self.docker_version
        out["Labels"] = self.labels
        out["Architecture"] = self.architecture
        if self.variant:
            out["Variant"] = self.variant
        out["Os"] = self.os
        out["Layers"] = self.layers
        out["LayersData"] = self.layers_data
        out["Env"] = self.env
        if self.platforms:
            out["Platforms"] = self.platforms
            out["ManifestDigest"] = str(self.manifest_digest)
        return out


def _client(ref: reference.Reference, client: RegistryClient | None) -> RegistryClient:
    return client or RegistryClient(ref.domain)


def raw_manifest(name: str, *, client: RegistryClient | None = None) -> tuple[bytes, str]:
    """The manifest or index ``name`` resolves to, as the registry sent it, and its media
    type; a missing one is reported in ``docker pull``'s words."""
    ref = reference.parse_docker_ref(name)
    client = _client(ref, client)
    try:
        return client.get_manifest(ref.path, ref.digest or ref.tag or reference.DEFAULT_TAG)
    except RegistryError as err:
        raise _pull_error(err, ref) from None


def inspect_remote(
    name: str,
    *,
    platform: Platform | str | None = None,
    client: RegistryClient | None = None,
    tags: bool = True,
) -> RemoteImage:
    """Describe ``name`` as the registry serves it (nothing is stored).

    From an index the image for ``platform`` (default: this host's) is described
    and every platform is listed. ``tags=False`` skips the tag listing
    (skopeo's ``--no-tags``).
    """
    ref = reference.parse_docker_ref(name)
    client = _client(ref, client)
    plat = Platform.parse(platform) if isinstance(platform, str) else platform or host_platform()
    top, top_type = raw_manifest(name, client=client)
    top_digest = Digest(ref.digest) if ref.digest else _digest.of_bytes(top)
    doc = parse_manifest(top, top_type or None)
    platforms: list[dict[str, Any]] = []
    raw, media, mdigest = top, doc.media_type, top_digest
    if isinstance(doc, Index):
        for d in doc.manifests:
            entry: dict[str, Any] = {"digest": str(d.digest), "mediaType": d.media_type}
            if d.platform is not None:
                entry["platform"] = d.platform.to_dict()
            platforms.append(entry)
        chosen = doc.select(plat)
        if chosen is None:
            raise RegistryError(
                f"no matching manifest for {plat} in the manifest list entries",
                code="MANIFEST_UNKNOWN",
                hint="it has: " + (", ".join(str(p) for p in doc.platforms()) or "nothing"),
            )
        raw, _ = client.get_manifest(ref.path, chosen.digest)
        media, mdigest = chosen.media_type, Digest(chosen.digest)
        doc = parse_manifest(raw, media)
        if isinstance(doc, Index):
            raise InvalidManifest(f"{ref.familiar()}: nested index for {plat}")
    m: Manifest = doc
    cfg: dict[str, Any] = {}
    if mt.is_config(m.config.media_type):
        cfg_raw = client.read_blob(ref.path, m.config.digest, MAX_CONFIG_SIZE)
        try:
            loaded = json.loads(cfg_raw)
        except ValueError as err:
            raise InvalidManifest(f"config {m.config.digest}: {err}") from None
        if isinstance(loaded, dict):
            cfg = loaded
    container = cfg.get("config") or {}
    labels = container.get("Labels") if isinstance(container, dict) else None
    env = container.get("Env") if isinstance(container, dict) else None
    return RemoteImage(
        name=ref.name,
        digest=top_digest,
        manifest_digest=mdigest,
        media_type=media if not platforms else top_type or doc.media_type,
        repo_tags=sorted(client.tags(ref.path)) if tags else [],
        created=cfg.get("created"),
        docker_version=str(cfg.get("docker_version", "")),
        labels=dict(labels) if isinstance(labels, Mapping) else None,
        architecture=str(cfg.get("architecture", "")),
        os=str(cfg.get("os", "")),
        variant=cfg.get("variant"),
        layers=[str(d.digest) for d in m.layers],
        layers_data=[
            {
                "MIMEType": d.media_type,
                "Digest": str(d.digest),
                "Size": d.size,
                "Annotations": dict(d.annotations) or None,
            }
            for d in m.layers
        ],
        env=[str(e) for e in env] if isinstance(env, list) else None,
        platforms=platforms,
        config=cfg,
    )


def tag_remote(
    source: str,
    target: str,
    *,
    client: RegistryClient | None = None,
) -> Digest:
    """Point ``target`` (``name:tag`` or a bare tag) at the manifest ``source`` names,
    without pulling. Returns the manifest digest (unchanged).

    ``target`` may be a bare tag (same repository) or a reference in the same
    registry; a different repository gets the blobs mounted. Between registries
    use ``image copy``.
    """
    src = reference.parse_docker_ref(source)
    if ":" not in target and "/" not in target and "@" not in target:
        dst = src.with_tag(target)
    else:
        dst = reference.parse_docker_ref(target)
    if dst.digest is not None or dst.tag is None:
        raise UsageError(f"tag --remote needs a tag to set, not {target!r}")
    if dst.domain != src.domain:
        raise UsageError(
            f"tag --remote stays in one registry ({src.domain} -> {dst.domain}): "
            "use `gantry image copy` between registries"
        )
    client = _client(src, client)
    raw, media_type = client.get_manifest(src.path, src.digest or src.tag or reference.DEFAULT_TAG)
    doc = parse_manifest(raw, media_type or None)
    if dst.path != src.path:
        from .copy import copy as _copy

        result = _copy(
            f"docker://{src}",
            f"docker://{dst}",
            all_platforms=True,
            clients={src.domain: client},
        )
        return result.digest
    return client.put_manifest(dst.path, dst.tag, raw, doc.media_type)


@dataclass(frozen=True)
class SearchResult:
    """One row of ``search``: Docker's columns."""

    name: str
    description: str = ""
    star_count: int = 0
    is_official: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Description": self.description,
            "StarCount": self.star_count,
            "IsOfficial": self.is_official,
        }


def split_search_term(term: str) -> tuple[str, str]:
    """Docker's rule: ``host/term`` searches ``host`` when the first part looks like a
    registry (has ``.`` or ``:``, or is ``localhost``); otherwise Docker Hub."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return reference.DEFAULT_DOMAIN, term


def search(
    term: str,
    *,
    limit: int = 25,
    client: RegistryClient | None = None,
) -> list[SearchResult]:
    """Repositories matching ``term`` (at most ``limit``)."""
    if not 1 <= limit <= 100:
        raise UsageError(f"limit {limit} is outside the range of [1, 100]")
    domain, words = split_search_term(term)
    if not words:
        raise UsageError("search term cannot be empty")
    client = client or RegistryClient(domain)
    found = _v1_search(client, words, limit)
    if found is not None:
        return found
    try:
        names = client.catalog()
    except RegistryError as err:
        raise RegistryError(
            f"{domain} offers no search and its catalog is closed: {err}",
            code=err.code,
            status=err.status,
        ) from None
    needle = words.lower()
    prefix = "" if domain == reference.DEFAULT_DOMAIN else f"{domain}/"
    hits = [n for n in names if needle in n.lower()]
    hits.sort(key=lambda n: (not n.lower().startswith(needle), n))
    return [SearchResult(prefix + n) for n in hits[:limit]]


def _v1_search(client: RegistryClient, words: str, limit: int) -> list[SearchResult] | None:
    """The v1 search API (Docker Hub's index); None when the registry has none."""
    import urllib.parse

    query = urllib.parse.urlencode({"q": words, "n": str(limit)})
    try:
        # Docker Hub's search lives on its index host, not on registry-1
        hub = client.domain in (reference.DEFAULT_DOMAIN, reference.LEGACY_DEFAULT_DOMAIN)
        path = f"https://{reference.LEGACY_DEFAULT_DOMAIN}/v1/search" if hub else "/v1/search"
        resp = client.request("GET", f"{path}?{query}", scopes=[])
    except GantryError:
        return None
    try:
        if resp.status != 200:
            return None
        try:
            doc = json.loads(resp.read(16 << 20))
        except ValueError:
            return None
    finally:
        resp.close()
    rows = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        return None
    out = []
    for r in rows[:limit]:
        if not isinstance(r, dict):
            continue
        out.append(
            SearchResult(
                name=str(r.get("name", "")),
                description=str(r.get("description") or ""),
                star_count=int(r.get("star_count") or 0),
                is_official=bool(r.get("is_official")),
            )
        )
    return out
