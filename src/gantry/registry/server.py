"""Running the registry: sockets, TLS, access log, graceful stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Callable

from aiohttp import web

from gantry.errors import UsageError

from .app import JsonAccessLogger, Registry
from .config import RegistryConfig


def ssl_context(config: RegistryConfig) -> ssl.SSLContext | None:
    if config.tls_certificate is None:
        return None
    if config.tls_key is None:
        raise UsageError("http.tls.key is required with http.tls.certificate")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(config.tls_certificate), str(config.tls_key))
    except (OSError, ssl.SSLError) as e:
        raise UsageError(f"cannot load TLS certificate/key: {e}") from None
    return ctx


async def start(config: RegistryConfig) -> tuple[web.AppRunner, list[str]]:
    """Start serving; returns the runner (``await runner.cleanup()`` stops) and URLs."""
    host, port = config.host_port()
    tls = ssl_context(config)
    app = Registry(config).make_app()
    runner = web.AppRunner(
        app,
        access_log_class=JsonAccessLogger,
        access_log=_access_logger() if config.access_log else None,
        handle_signals=False,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls, backlog=1024, reuse_address=True)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise UsageError(f"cannot listen on {config.addr}: {e.strerror}") from None
    scheme = "https" if tls else "http"
    urls = []
    for addr in runner.addresses:
        h, p = addr[0], addr[1]
        urls.append(f"{scheme}://{'[' + h + ']' if ':' in h else h}:{p}")
    return runner, urls


def _access_logger() -> logging.Logger:
    return logging.getLogger("gantry.registry.access")


def serve(config: RegistryConfig, on_ready: Callable[[list[str]], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM."""

    async def main() -> None:
        runner, urls = await start(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        if on_ready is not None:
            on_ready(urls)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
