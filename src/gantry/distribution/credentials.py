"""Registry credentials in Docker's ``config.json`` (read and written compatibly).

Where: ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``. What:

* ``auths``: ``{"<server>": {"auth": base64("user:password"), "identitytoken": ...}}``;
  Docker Hub's key is ``https://index.docker.io/v1/``;
* ``credHelpers``: ``{"<server>": "<helper>"}`` and ``credsStore``: ``"<helper>"``,
  meaning the program ``docker-credential-<helper>`` with ``get``/``store``/``erase``
  (the docker-credential-helpers protocol: JSON on stdin and stdout).

Keys of the file that gantry does not know are kept as they are when it writes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gantry.errors import GantryError

__all__ = [
    "DOCKER_HUB_KEY",
    "ConfigFile",
    "Credential",
    "config_path",
    "server_key",
]

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class Credential:
    username: str = ""
    password: str = ""
    #: an OAuth refresh token (Docker's ``identitytoken``), used instead of a password
    identity_token: str = ""

    def __bool__(self) -> bool:
        return bool(self.username or self.password or self.identity_token)


def config_dir() -> Path:
    env = os.environ.get("DOCKER_CONFIG")
    if env:
        return Path(env)
    return Path(os.path.expanduser("~")) / ".docker"


def config_path() -> Path:
    return config_dir() / "config.json"


def server_key(server: str) -> str:
    """The key a registry is filed under: ``host[:port]``, Docker Hub's legacy URL."""
    host = server.strip()
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix) :]
    host = host.split("/", 1)[0]
    if host in _HUB_NAMES or not host:
        return DOCKER_HUB_KEY
    return host


def _hostname(key: str) -> str:
    return server_key(key) if key != DOCKER_HUB_KEY else DOCKER_HUB_KEY


class ConfigFile:
    """A Docker ``config.json``; load, look up, store and erase credentials."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_path()
        self.data: dict[str, Any] = {}
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as err:
            raise GantryError(f"loading config file {self.path}: {err.strerror}") from None
        if raw.strip():
            try:
                data = json.loads(raw)
            except ValueError as err:
                raise GantryError(f"loading config file {self.path}: {err}") from None
            if not isinstance(data, dict):
                raise GantryError(f"loading config file {self.path}: not a JSON object")
            self.data = data

    # -- lookups -------------------------------------------------------------

    def _auths(self) -> dict[str, Any]:
        auths = self.data.get("auths")
        return auths if isinstance(auths, dict) else {}

    def helper_for(self, key: str) -> str | None:
        helpers = self.data.get("credHelpers")
        if isinstance(helpers, dict):
            for k, v in helpers.items():
                if _hostname(k) == key and isinstance(v, str) and v:
                    return v
        store = self.data.get("credsStore")
        return store if isinstance(store, str) and store else None

    def get(self, server: str) -> Credential:
        """Credentials for ``server`` (empty when there are none)."""
        key = server_key(server)
        helper = self.helper_for(key)
        if helper is not None:
            cred = _helper_get(helper, key)
            if cred:
                return cred
        for k, entry in self._auths().items():
            if _hostname(k) != key or not isinstance(entry, dict):
                continue
            user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
            auth = entry.get("auth")
            if isinstance(auth, str) and auth:
                try:
                    decoded = base64.b64decode(auth).decode()
                except (ValueError, UnicodeDecodeError):
                    raise GantryError(f"invalid auth configuration for {k}") from None
                user, sep, password = decoded.partition(":")
                if not sep:
                    raise GantryError(f"invalid auth configuration for {k}")
            token = str(entry.get("identitytoken") or "")
            return Credential(user, password, token)
        return Credential()

    # -- changes ---------------------------------------------------------------

    def store(self, server: str, cred: Credential) -> str:
        """Save ``cred``; returns where (``config.json`` path or the helper's name)."""
        key = server_key(server)
        helper = self.helper_for(key)
        if helper is not None:
            _helper_call(
                helper,
                "store",
                json.dumps(
                    {
                        "ServerURL": key,
                        "Username": cred.username if not cred.identity_token else "<token>",
                        "Secret": cred.identity_token or cred.password,
                    }
                ),
            )
            # Docker leaves an empty entry so `auths` lists the registry
            self.data.setdefault("auths", {})[key] = {}
            self.save()
            return helper
        entry: dict[str, str] = {}
        if cred.identity_token:
            entry["auth"] = base64.b64encode(f"{cred.username}:".encode()).decode()
            entry["identitytoken"] = cred.identity_token
        else:
            entry["auth"] = base64.b64encode(f"{cred.username}:{cred.password}".encode()).decode()
        auths = self.data.get("auths")
        if not isinstance(auths, dict):
            auths = self.data["auths"] = {}
        for k in [k for k in auths if _hostname(k) == key]:
            del auths[k]
        auths[key] = entry
        self.save()
        return str(self.path)

    def erase(self, server: str) -> bool:
        """Forget credentials for ``server``; False if there were none."""
        key = server_key(server)
        found = False
        helper = self.helper_for(key)
        if helper is not None:
            with contextlib.suppress(GantryError):
                _helper_call(helper, "erase", key)
                found = True
        auths = self._auths()
        for k in [k for k in auths if _hostname(k) == key]:
            del auths[k]
            found = True
        if found:
            self.save()
        return found

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.data, f, indent="\t")
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _helper_call(helper: str, action: str, stdin: str) -> str:
    program = f"docker-credential-{helper}"
    try:
        p = subprocess.run(
            [program, action], input=stdin, capture_output=True, text=True, timeout=60
        )
    except FileNotFoundError:
        raise GantryError(
            f'error getting credentials - err: exec: "{program}": executable file not found in $PATH'
        ) from None
    except subprocess.TimeoutExpired:
        raise GantryError(f"{program} {action}: timed out") from None
    if p.returncode != 0:
        out = (p.stdout.strip() or p.stderr.strip()).splitlines()
        raise GantryError(f"{program} {action}: {out[-1] if out else 'failed'}")
    return p.stdout


def _helper_get(helper: str, key: str) -> Credential:
    try:
        out = _helper_call(helper, "get", key)
    except GantryError as err:
        if "credentials not found" in str(err):
            return Credential()
        raise
    try:
        doc = json.loads(out)
    except ValueError:
        raise GantryError(f"docker-credential-{helper} get: invalid JSON") from None
    if not isinstance(doc, dict):
        return Credential()
    user, secret = str(doc.get("Username") or ""), str(doc.get("Secret") or "")
    if user == "<token>":
        return Credential(identity_token=secret)
    return Credential(user, secret)
