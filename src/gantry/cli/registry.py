"""``gantry registry serve`` and ``gantry registry gc``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _config(ctx: click.Context, config: str | None, addr: str | None, data: str | None) -> Any:
    from gantry.registry.config import load, parse_addr

    cfg = load(Path(config) if config else None)
    if addr:
        parse_addr(addr)
        cfg.addr = addr
    if data:
        cfg.storage = "filesystem"
        cfg.data = Path(data)
    if cfg.storage == "filesystem" and cfg.data is None:
        cfg.data = Path(ctx.obj["root"]) / "registry"
    return cfg


@click.command("serve")
@click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(dir_okay=False, exists=True),
    help="YAML configuration file.",
)
@click.option("--addr", help="Address to listen on, HOST:PORT (default 127.0.0.1:5000).")
@click.option(
    "--data", type=click.Path(file_okay=False), help="Data directory (filesystem storage)."
)
@click.option("--read-only", is_flag=True, help="Refuse every write (pushes, deletes).")
@click.option(
    "--token-issuer",
    "token_key",
    type=click.Path(dir_okay=False, exists=True),
    help="Also issue bearer tokens at /token, signed with this PEM private key.",
)
@click.option(
    "--htpasswd",
    type=click.Path(dir_okay=False, exists=True),
    help="Require Basic auth with users from this htpasswd (bcrypt) file.",
)
@click.option(
    "--tls-cert", type=click.Path(dir_okay=False, exists=True), help="TLS certificate (PEM)."
)
@click.option(
    "--tls-key", type=click.Path(dir_okay=False, exists=True), help="TLS private key (PEM)."
)
@click.option("--quiet", "-q", is_flag=True, help="No access log.")
@click.pass_context
def serve(
    ctx: click.Context,
    config: str | None,
    addr: str | None,
    data: str | None,
    read_only: bool,
    token_key: str | None,
    htpasswd: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    quiet: bool,
) -> None:
    """Run an OCI Distribution (Docker Registry v2) server."""
    import logging
    import sys

    from gantry.registry.config import HtpasswdConfig, TokenIssuerConfig
    from gantry.registry.server import serve as run

    cfg = _config(ctx, config, addr, data)
    if read_only:
        cfg.readonly = True
    if htpasswd:
        cfg.htpasswd = HtpasswdConfig(path=Path(htpasswd))
    if token_key:
        if cfg.token_issuer is None:
            cfg.token_issuer = TokenIssuerConfig(key=Path(token_key))
        else:
            cfg.token_issuer.key = Path(token_key)
    if tls_cert or tls_key:
        cfg.tls_certificate = Path(tls_cert) if tls_cert else None
        cfg.tls_key = Path(tls_key) if tls_key else None
    if quiet:
        cfg.access_log = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("gantry.registry").addHandler(handler)
    logging.getLogger("gantry.registry").setLevel(logging.INFO)

    def ready(urls: list[str]) -> None:
        if cfg.tls_certificate is None and not _loopback(cfg.addr):
            click.echo(
                f"WARNING: serving plain HTTP on {cfg.addr}: credentials and tokens cross the "
                "network in clear and clients must list it as an insecure registry; "
                "use --tls-cert/--tls-key beyond loopback.",
                err=True,
            )
        where = (
            cfg.data if cfg.storage == "filesystem" else f"s3://{cfg.s3.bucket if cfg.s3 else ''}"
        )
        click.echo(f"gantry registry listening on {', '.join(urls)} (storage: {where})", err=True)

    run(cfg, on_ready=ready)


def _loopback(addr: str) -> bool:
    import ipaddress

    from gantry.registry.config import parse_addr

    host, _port = parse_addr(addr)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("gc")
@click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(dir_okay=False, exists=True),
    help="YAML configuration file.",
)
@click.option(
    "--data", type=click.Path(file_okay=False), help="Data directory (filesystem storage)."
)
@click.option("--dry-run", "-n", is_flag=True, help="Only report what would be deleted.")
@click.option(
    "--delete-untagged", "-m", is_flag=True, help="Also delete manifests no tag points at."
)
@click.option(
    "--grace-period", help="Keep blobs and manifests younger than this (default 1h; e.g. 10m, 0s)."
)
@click.pass_context
def gc(
    ctx: click.Context,
    config: str | None,
    data: str | None,
    dry_run: bool,
    delete_untagged: bool,
    grace_period: str | None,
) -> None:
    """Delete blobs no manifest needs (safe while the registry is serving)."""
    from gantry.registry.config import parse_duration
    from gantry.registry.gc import collect
    from gantry.registry.storage import open_driver

    cfg = _config(ctx, config, None, data)
    grace = parse_duration(grace_period, "--grace-period") if grace_period else cfg.gc_grace_period
    driver = open_driver(cfg)
    try:
        report = collect(
            driver,
            dry_run=dry_run,
            delete_untagged=delete_untagged,
            grace_period=grace,
            upload_purge_age=cfg.upload_purge_age,
            on_event=lambda msg: click.echo(msg),
        )
    finally:
        driver.close()
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{report.marked} blobs marked, {verb} {len(report.blobs)} blobs "
        f"({report.bytes} bytes), {len(report.manifests)} manifests, {report.uploads} stale uploads"
    )
