"""Commands that read a registry without the local store: ``manifest inspect``."""

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
