"""Typed keys for what the registry stores on a request and on its application."""

from __future__ import annotations

from aiohttp import web

from .auth import Identity

REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("request_id", str)
USER_KEY: web.RequestKey[str | None] = web.RequestKey("user", str)
IDENTITY_KEY: web.RequestKey[Identity] = web.RequestKey("identity", Identity)
