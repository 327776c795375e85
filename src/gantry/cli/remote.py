"""Commands that use a registry without the local store: ``manifest inspect``,
``image copy``, ``search``, and the remote ``image inspect`` / ``tag`` (for ``--remote``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import click

from gantry.oci import Index, Platform


@click.command()
@click.argument("name", metavar="[MANIFEST_LIST] MANIFEST")
@click.option("--insecure", is_flag=True, help="Allow communication with an insecure registry")
@click.option(
    "-v", "--verbose", is_flag=True, help="Output additional info including layers and platform"
)
def inspect(name: str, insecure: bool, verbose: bool) -> None:
    """Display an image manifest, or manifest list, as the registry serves it."""
    from gantry import reference
    from gantry.distribution import RegistryClient
    from gantry.oci import parse_manifest

    ref = reference.parse_docker_ref(name)
    client = RegistryClient(ref.domain, insecure=True if insecure else None)
    raw, media_type = client.get_manifest(ref.path, ref.digest or ref.tag or "latest")
    if not verbose:
        # Docker re-indents the JSON it received
        click.echo(json.dumps(json.loads(raw), indent="\t"))
        return
    doc = parse_manifest(raw, media_type or None)
    if isinstance(doc, Index):
        entries = []
        for d in doc.manifests:
            sub, sub_type = client.get_manifest(ref.path, d.digest)
            entries.append(_verbose(client, ref, sub, sub_type, d.platform))
        click.echo(json.dumps(entries, indent="\t"))
        return
    click.echo(json.dumps(_verbose(client, ref, raw, media_type, None), indent="\t"))


def _verbose(
    client: Any, ref: Any, raw: bytes, media_type: str, platform: Platform | None
) -> dict[str, Any]:
    """Docker's ``manifest inspect -v`` record of one image manifest."""
    from gantry import digest as _digest
    from gantry.oci import Manifest

    m = Manifest.parse(raw, media_type or None)
    if platform is None:
        cfg = json.loads(client.read_blob(ref.path, m.config.digest, 8 << 20))
        platform = Platform(
            str(cfg.get("os", "")), str(cfg.get("architecture", "")), cfg.get("variant")
        )
    desc: dict[str, Any] = {
        "mediaType": m.media_type,
        "digest": str(_digest.of_bytes(raw)),
        "size": len(raw),
        "platform": platform.to_dict(),
    }
    key = "SchemaV2Manifest" if m.is_docker else "OCIManifest"
    return {
        "Ref": str(ref),
        "Descriptor": desc,
        "Raw": base64.b64encode(raw).decode(),
        key: json.loads(raw),
    }


# ------------------------------------------------------------------ image copy


@click.command(name="copy")
@click.argument("source", metavar="SOURCE")
@click.argument("destination", metavar="DESTINATION")
@click.option(
    "--all-platforms", is_flag=True, help="Copy every image of an index, and the index itself"
)
@click.option("--platform", help="The image to copy from an index (default: this host's)")
@click.option("--insecure", is_flag=True, help="Allow communication with insecure registries")
@click.option("-q", "--quiet", is_flag=True, help="Print only the digest written")
@click.option(
    "--max-concurrent-uploads",
    type=click.IntRange(1, 64),
    default=3,
    show_default=True,
    help="Blobs copied at once",
)
def copy(
    source: str,
    destination: str,
    all_platforms: bool,
    platform: str | None,
    insecure: bool,
    quiet: bool,
    max_concurrent_uploads: int,
) -> None:
    """Copy an image between registries, OCI layouts and docker archives.

    SOURCE and DESTINATION are a registry reference (docker:// optional),
    oci:DIR[:REF] or docker-archive:FILE[:NAME:TAG]. Digests are kept.
    """
    from gantry.cli.pull import Display
    from gantry.distribution.copy import copy as do_copy

    display = Display(quiet=quiet)
    try:
        result = do_copy(
            source,
            destination,
            all_platforms=all_platforms,
            platform=platform,
            progress=display,
            concurrency=max_concurrent_uploads,
            insecure=True if insecure else None,
        )
    finally:
        display.close()
    if quiet:
        click.echo(str(result.digest))
    else:
        display.line(f"Copied {result.source} to {result.destination}")


# ------------------------------------------- image inspect --remote, tag --remote
# (flags of cli/images.py's ``inspect`` and ``tag``; the work is here so those commands
# import no registry code until ``--remote`` is given)


def inspect_remote(
    name: str,
    *,
    platform: str | None = None,
    raw: bool = False,
    show_config: bool = False,
    tags: bool = True,
    insecure: bool = False,
) -> bytes | dict[str, Any]:
    """One image as its registry holds it: the manifest (or index) bytes as sent
    (``raw``), the image config (``show_config``), or skopeo's inspect record."""
    from gantry import reference
    from gantry.distribution import RegistryClient
    from gantry.distribution.remote import inspect_remote as do_inspect
    from gantry.distribution.remote import raw_manifest

    ref = reference.parse_docker_ref(name)
    client = RegistryClient(ref.domain, insecure=True if insecure else None)
    if raw:
        return raw_manifest(name, client=client)[0]
    info = do_inspect(name, platform=platform, client=client, tags=tags and not show_config)
    return info.config if show_config else info.to_dict()


def tag_remote(source: str, target: str, *, insecure: bool = False) -> str:
    """Tag ``source`` as ``target`` (a reference in the same registry, or a bare tag)
    in the registry, without pulling; returns the manifest digest."""
    from gantry import reference
    from gantry.distribution import RegistryClient
    from gantry.distribution.remote import tag_remote as do_tag

    ref = reference.parse_docker_ref(source)
    client = RegistryClient(ref.domain, insecure=True if insecure else None)
    return str(do_tag(source, target, client=client))


# ----------------------------------------------------------------- search

_SEARCH_TABLE = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"
_SEARCH_HEADER = {
    "Name": "NAME",
    "Description": "DESCRIPTION",
    "StarCount": "STARS",
    "IsOfficial": "OFFICIAL",
}


def _search_row(result: Any, trunc: bool) -> Any:
    from gantry.cli.formatter import Row
    from gantry.cli.images import ellipsis

    class SearchRow(Row):
        go_type = "*formatter.searchContext"
        json_fields = ("Name", "Description", "StarCount", "IsOfficial", "IsAutomated")

        def __init__(self) -> None:
            desc = result.description.replace("\n", " ").replace("\r", " ")
            self.Name = result.name
            self.Description = ellipsis(desc, 45) if trunc else desc
            self.StarCount = str(result.star_count)
            self.IsOfficial = "[OK]" if result.is_official else ""
            self.IsAutomated = ""

    return SearchRow()


def _search_filter(values: tuple[str, ...]) -> tuple[bool | None, int]:
    """``--filter is-official=true|false`` and ``stars=N``, checked as docker does."""
    from gantry.errors import UsageError

    official: bool | None = None
    stars = 0
    for v in values:
        key, sep, val = v.partition("=")
        if not sep:
            raise UsageError(f"bad format of filter (expected name=value): {v}")
        if key == "is-official":
            if val.lower() not in ("true", "false", "1", "0"):
                raise UsageError(f"invalid filter 'is-official={val}'")
            official = val.lower() in ("true", "1")
        elif key == "stars":
            if not val.isdigit():
                raise UsageError(f"invalid filter 'stars={val}'")
            stars = int(val)
        elif key == "is-automated":
            continue  # deprecated by Docker Hub: matches nothing new
        else:
            raise UsageError(f"invalid filter '{key}'")
    return official, stars


@click.command()
@click.argument("term", metavar="TERM")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions")
@click.option("--format", "fmt", help="Pretty-print search using a Go template")
@click.option("--limit", type=int, default=25, show_default=True, help="Max number of results")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("--insecure", is_flag=True, help="Allow communication with an insecure registry")
def search(
    term: str, filters: tuple[str, ...], fmt: str | None, limit: int, no_trunc: bool, insecure: bool
) -> None:
    """Search a registry for images (its catalog when it has no search API)."""
    from gantry.cli.formatter import render
    from gantry.distribution import RegistryClient
    from gantry.distribution.remote import search as do_search
    from gantry.distribution.remote import split_search_term

    official, stars = _search_filter(filters)
    domain, _ = split_search_term(term)
    client = RegistryClient(domain, insecure=True if insecure else None)
    results = [
        r
        for r in do_search(term, limit=limit, client=client)
        if (official is None or r.is_official == official) and r.star_count >= stars
    ]
    rows = [_search_row(r, not no_trunc) for r in results]
    click.echo(render(fmt or _SEARCH_TABLE, rows, _SEARCH_HEADER), nl=False)
