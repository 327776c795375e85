"""Named volumes (Docker's ``local`` driver): ``<root>/volumes/<name>/_data``.

Each volume keeps its metadata next to its data in ``<root>/volumes/<name>/volume.json``
(created time, labels, options). A volume is in use while a container's ``Mounts`` name it;
``remove`` refuses such a volume as Docker does.

Anonymous volumes are told apart as Docker >= 23 does: by the label
``com.docker.volume.anonymous`` (empty value), which is what ``volume prune`` without ``-a``
looks for. Volumes written before gantry set the label carry ``"anonymous": true`` in their
``volume.json`` instead; reading one adds the label, so both kinds behave alike.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantry.errors import Conflict, NotFound, UsageError

VALID_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
#: the label moby puts on volumes created without a name
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def rfc3339(ts: float) -> str:
    """Go's ``time.RFC3339`` of ``ts`` in local time: ``...+02:00``, or ``...Z`` in UTC."""
    from datetime import UTC, datetime  # only for inspect's CreatedAt: not every run

    text = datetime.fromtimestamp(ts, UTC).astimezone().isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@dataclass(frozen=True)
class Volume:
    name: str
    mountpoint: Path
    created: float
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        """Created without a name (carries Docker's anonymous-volume label)."""
        return ANONYMOUS_LABEL in self.labels

    def inspect(self) -> dict[str, Any]:
        """``docker volume inspect``'s object."""
        return {
            "CreatedAt": rfc3339(self.created),
            "Driver": "local",
            "Labels": dict(self.labels) or None,
            "Mountpoint": str(self.mountpoint),
            "Name": self.name,
            "Options": dict(self.options) or None,
            "Scope": "local",
        }


class Volumes:
    """The volumes under ``<root>/volumes``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.dir = Path(root) / "volumes"

    def _meta(self, name: str) -> Path:
        return self.dir / name / "volume.json"

    def create(
        self,
        name: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
        anonymous: bool = False,
    ) -> Volume:
        """Create (or, as Docker, return the existing) volume ``name``.

        Without a name (or with ``anonymous``) the volume gets a random name if it has none
        and Docker's anonymous-volume label.
        """
        labels = dict(labels or {})
        if name is None:
            name = os.urandom(32).hex()
            anonymous = True
        if anonymous:
            labels[ANONYMOUS_LABEL] = ""
        if not VALID_NAME.match(name):
            raise UsageError(
                f'create {name}: "{name}" includes invalid characters for a local volume name, '
                'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                "directory, use absolute path"
            )
        existing = self.find(name)
        if existing is not None:
            return existing
        vdir = self.dir / name
        (vdir / "_data").mkdir(parents=True, exist_ok=True)
        vol = Volume(
            name,
            vdir / "_data",
            time.time(),
            labels,
            dict(options or {}),
        )
        tmp = vdir / ".volume.json.tmp"
        tmp.write_text(
            json.dumps(
                {
                    "created": vol.created,
                    "labels": dict(vol.labels),
                    "options": dict(vol.options),
                    "anonymous": vol.anonymous,  # read by gantry before the label
                }
            )
        )
        os.replace(tmp, self._meta(name))
        return vol

    def find(self, name: str) -> Volume | None:
        try:
            meta = json.loads(self._meta(name).read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        labels = dict(meta.get("labels") or {})
        if meta.get("anonymous"):  # written before the label: same meaning
            labels.setdefault(ANONYMOUS_LABEL, "")
        return Volume(
            name,
            self.dir / name / "_data",
            float(meta.get("created", 0)),
            labels,
            dict(meta.get("options") or {}),
        )

    def get(self, name: str) -> Volume:
        vol = self.find(name)
        if vol is None:
            raise NotFound(f"get {name}: no such volume")
        return vol

    def list(self) -> list[Volume]:
        if not self.dir.is_dir():
            return []
        out = []
        for entry in sorted(os.listdir(self.dir)):
            vol = self.find(entry)
            if vol is not None:
                out.append(vol)
        return out

    def remove(self, name: str, *, in_use_by: Iterable[str] = (), force: bool = False) -> None:
        """Remove ``name``; refused while containers (``in_use_by``) use it."""
        users = list(in_use_by)
        if self.find(name) is None:
            if force:
                return
            raise NotFound(f"get {name}: no such volume")
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        shutil.rmtree(self.dir / name)

    def size(self, name: str) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.dir / name / "_data"):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_size
                except OSError:
                    pass
        return total
