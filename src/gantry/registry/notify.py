"""Webhook notifications on push and delete, in distribution's envelope format.

Events are queued and POSTed by a background task (one batch per request
burst), retried ``threshold`` times per endpoint, and dropped after that: a
slow or dead listener never slows the registry down.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import uuid
from typing import Any

from .config import Endpoint
from .keys import REQUEST_ID_KEY

log = logging.getLogger("gantry.registry.notify")

MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"


class Notifier:
    def __init__(self, endpoints: list[Endpoint], *, source_addr: str = "") -> None:
        self.endpoints = endpoints
        self.source = {"addr": source_addr, "instanceID": str(uuid.uuid4())}
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    async def start(self) -> None:
        if self.endpoints and self._task is None:
            self._queue = asyncio.Queue(maxsize=10000)
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is None or self._queue is None:
            return
        # give queued events a moment to go out, then stop
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=2.0)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def publish(
        self,
        action: str,
        repository: str,
        *,
        digest: str,
        media_type: str = "",
        size: int = 0,
        tag: str | None = None,
        request: Any = None,
        user: str | None = None,
    ) -> None:
        if self._queue is None:
            return
        target: dict[str, Any] = {
            "mediaType": media_type,
            "size": size,
            "digest": digest,
            "length": size,
            "repository": repository,
        }
        if tag:
            target["tag"] = tag
        event: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "timestamp": datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z"),
            "action": action,
            "target": target,
            "actor": {"name": user or ""},
            "source": self.source,
        }
        if request is not None:
            event["target"]["url"] = str(request.url.with_path(request.path))
            event["request"] = {
                "id": request.get(REQUEST_ID_KEY, ""),
                "addr": request.remote or "",
                "host": request.host,
                "method": request.method,
                "useragent": request.headers.get("User-Agent", ""),
            }
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.failed += 1
            log.warning("notification queue full: dropping %s event", action)

    async def _run(self) -> None:
        import aiohttp

        assert self._queue is not None
        async with aiohttp.ClientSession() as session:
            while True:
                batch = [await self._queue.get()]
                while not self._queue.empty() and len(batch) < 100:
                    batch.append(self._queue.get_nowait())
                body = json.dumps({"events": batch}).encode()
                for ep in self.endpoints:
                    await self._send(session, ep, body, len(batch))
                for _ in batch:
                    self._queue.task_done()

    async def _send(self, session: Any, ep: Endpoint, body: bytes, n: int) -> None:
        import aiohttp

        headers = {"Content-Type": MEDIA_TYPE, **ep.headers}
        for attempt in range(max(1, ep.threshold)):
            try:
                async with session.post(
                    ep.url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=ep.timeout),
                ) as resp:
                    if 200 <= resp.status < 400:
                        self.sent += n
                        return
                    log.warning("notification endpoint %s answered %d", ep.name, resp.status)
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                log.warning("notification endpoint %s failed: %s", ep.name, e)
            await asyncio.sleep(min(2.0, 0.2 * (attempt + 1)))
        self.failed += n
