"""Image configuration (image-spec ``config.md``) with Docker's extensions.

Docker adds ``Healthcheck``, ``OnBuild`` and ``Shell`` to the container config
(moby's ``dockerspec``); OCI already has ``StopSignal`` and ``ArgsEscaped``. Keys
neither knows (``container_config``, ``docker_version``, ``Hostname``...) are kept
in ``extra`` and written back after the known ones, so parse -> ``to_json`` of
someone else's config does not drop data. The image ID is always the digest of
the config bytes as stored, never of a re-serialization.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gantry.digest import Digest
from gantry.errors import InvalidDigest, InvalidManifest

from . import canonical as cj
from .platform import Platform

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")
_ENV = re.compile(r"^[^=]+=", re.DOTALL)


def rfc3339(t: datetime.datetime) -> str:
    """``t`` as Go's RFC3339Nano, the form Docker writes ``created`` in:
    ``2024-01-02T03:04:05.5Z`` (UTC as ``Z``, fraction without trailing zeros).
    A naive datetime is taken as UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    off = t.utcoffset() or datetime.timedelta(0)
    frac = f".{t.microsecond:06d}".rstrip("0").rstrip(".")
    base = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if not off:
        return f"{base}{frac}Z"
    minutes = int(off.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    return f"{base}{frac}{sign}{hh:02d}:{mm:02d}"


def _digest(v: Any, where: str) -> Digest:
    try:
        return Digest(cj.as_str(v, where))
    except InvalidDigest as e:
        raise InvalidManifest(f"{where}: {e}") from None


def _time(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    v = cj.opt_str(obj, key, where)
    if v is not None and not _RFC3339.fullmatch(v):
        raise InvalidManifest(f"{where}.{key}: not an RFC 3339 time: {v!r}")
    return v


def _keys_of_objects(v: Any, where: str) -> tuple[str, ...]:
    """``{"80/tcp": {}, ...}`` -> ("80/tcp", ...); null reads as empty."""
    if v is None:
        return ()
    obj = cj.as_object(v, where)
    for k, x in obj.items():
        cj.as_object(x, f"{where}[{k!r}]")
    return tuple(obj)


def _opt_list(v: Any, where: str) -> tuple[str, ...] | None:
    return None if v is None else cj.str_list(v, where)


def _extra(obj: Mapping[str, Any], known: Iterable[str]) -> cj.FrozenDict[Any]:
    k = set(known)
    return cj.FrozenDict({key: v for key, v in obj.items() if key not in k})


def _put_extra(d: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for k in sorted(extra):
        if k not in d:
            d[k] = extra[k]
    return d


@dataclass(frozen=True, slots=True)
class Healthcheck:
    """``HEALTHCHECK``: durations in nanoseconds as Docker stores them; 0 = default."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    def __post_init__(self) -> None:
        cj.freeze(self, tuples=("test",))

    _KEYS = (
        ("Interval", "interval"),
        ("Timeout", "timeout"),
        ("StartPeriod", "start_period"),
        ("StartInterval", "start_interval"),
        ("Retries", "retries"),
    )

    @classmethod
    def from_dict(cls, obj: Any, where: str) -> Healthcheck:
        o = cj.as_object(obj, where)
        kw: dict[str, Any] = {"test": cj.str_list(o.get("Test"), f"{where}.Test")}
        for key, attr in cls._KEYS:
            if o.get(key) is not None:
                n = cj.as_int(o[key], f"{where}.{key}")
                if n < 0:
                    raise InvalidManifest(f"{where}.{key}: must not be negative")
                kw[attr] = n
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.test:
            d["Test"] = list(self.test)
        for key, attr in self._KEYS:
            if getattr(self, attr):
                d[key] = getattr(self, attr)
        return d


_CC_KEYS = [
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ArgsEscaped",
    "Healthcheck",
    "OnBuild",
    "Shell",
]


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """The ``config`` object: how containers from this image run.

    ``entrypoint``/``cmd``/``shell`` are None when unset (distinct from ``[]``).
    """

    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: tuple[str, ...] = ()
    working_dir: str = ""
    labels: Mapping[str, str] = field(default_factory=cj.FrozenDict)
    stop_signal: str = ""
    args_escaped: bool = False
    healthcheck: Healthcheck | None = None
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=cj.FrozenDict)

    def __post_init__(self) -> None:
        cj.freeze(
            self,
            tuples=("exposed_ports", "env", "volumes", "on_build", "entrypoint", "cmd", "shell"),
            maps=("labels", "extra"),
        )

    @classmethod
    def from_dict(cls, obj: Any, where: str = "config.config") -> ContainerConfig:
        o = cj.as_object(obj, where)
        env = cj.str_list(o.get("Env"), f"{where}.Env")
        for i, e in enumerate(env):
            if not _ENV.match(e):
                raise InvalidManifest(f"{where}.Env[{i}]: expected KEY=VALUE, got {e!r}")
        hc = o.get("Healthcheck")
        return cls(
            user=cj.opt_str(o, "User", where) or "",
            exposed_ports=_keys_of_objects(o.get("ExposedPorts"), f"{where}.ExposedPorts"),
            env=env,
            entrypoint=_opt_list(o.get("Entrypoint"), f"{where}.Entrypoint"),
            cmd=_opt_list(o.get("Cmd"), f"{where}.Cmd"),
            volumes=_keys_of_objects(o.get("Volumes"), f"{where}.Volumes"),
            working_dir=cj.opt_str(o, "WorkingDir", where) or "",
            labels=cj.str_map(o.get("Labels"), f"{where}.Labels"),
            stop_signal=cj.opt_str(o, "StopSignal", where) or "",
            args_escaped=(
                cj.as_bool(o["ArgsEscaped"], f"{where}.ArgsEscaped")
                if o.get("ArgsEscaped") is not None
                else False
            ),
            healthcheck=None if hc is None else Healthcheck.from_dict(hc, f"{where}.Healthcheck"),
            on_build=cj.str_list(o.get("OnBuild"), f"{where}.OnBuild"),
            shell=_opt_list(o.get("Shell"), f"{where}.Shell"),
            extra=_extra(o, _CC_KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.user:
            d["User"] = self.user
        if self.exposed_ports:
            d["ExposedPorts"] = {p: {} for p in sorted(self.exposed_ports)}
        if self.env:
            d["Env"] = list(self.env)
        if self.entrypoint is not None:
            d["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            d["Cmd"] = list(self.cmd)
        if self.volumes:
            d["Volumes"] = {v: {} for v in sorted(self.volumes)}
        if self.working_dir:
            d["WorkingDir"] = self.working_dir
        if self.labels:
            d["Labels"] = cj.sorted_map(self.labels)
        if self.stop_signal:
            d["StopSignal"] = self.stop_signal
        if self.args_escaped:
            d["ArgsEscaped"] = True
        if self.healthcheck is not None:
            d["Healthcheck"] = self.healthcheck.to_dict()
        if self.on_build:
            d["OnBuild"] = list(self.on_build)
        if self.shell is not None:
            d["Shell"] = list(self.shell)
        return _put_extra(d, self.extra)

    def env_dict(self) -> dict[str, str]:
        """``Env`` as a mapping (a later entry for the same name wins, as in Docker)."""
        out: dict[str, str] = {}
        for e in self.env:
            k, _, v = e.partition("=")
            out[k] = v
        return out


@dataclass(frozen=True, slots=True)
class RootFS:
    """``rootfs``: the uncompressed layer digests (diff IDs), bottom first."""

    diff_ids: tuple[Digest, ...] = ()
    type: str = "layers"
    extra: Mapping[str, Any] = field(default_factory=cj.FrozenDict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "diff_ids", tuple(Digest(d) for d in self.diff_ids))
        cj.freeze(self, maps=("extra",))

    @classmethod
    def from_dict(cls, obj: Any, where: str = "config.rootfs") -> RootFS:
        o = cj.as_object(obj, where)
        typ = cj.as_str(cj.req(o, "type", where), f"{where}.type")
        if typ != "layers":
            raise InvalidManifest(f"{where}.type: must be 'layers', got {typ!r}")
        ids = cj.as_list(cj.req(o, "diff_ids", where), f"{where}.diff_ids")
        return cls(
            diff_ids=tuple(_digest(d, f"{where}.diff_ids[{i}]") for i, d in enumerate(ids)),
            type=typ,
            extra=_extra(o, ("type", "diff_ids")),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "diff_ids": [str(x) for x in self.diff_ids]}
        return _put_extra(d, self.extra)


@dataclass(frozen=True, slots=True)
class History:
    """One ``history`` entry; ``empty_layer`` entries have no layer of their own."""

    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False
    extra: Mapping[str, Any] = field(default_factory=cj.FrozenDict)

    def __post_init__(self) -> None:
        cj.freeze(self, maps=("extra",))

    @classmethod
    def from_dict(cls, obj: Any, where: str) -> History:
        o = cj.as_object(obj, where)
        empty = o.get("empty_layer")
        return cls(
            created=_time(o, "created", where),
            created_by=cj.opt_str(o, "created_by", where),
            author=cj.opt_str(o, "author", where),
            comment=cj.opt_str(o, "comment", where),
            empty_layer=False if empty is None else cj.as_bool(empty, f"{where}.empty_layer"),
            extra=_extra(o, ("created", "created_by", "author", "comment", "empty_layer")),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.created is not None:
            d["created"] = self.created
        if self.created_by is not None:
            d["created_by"] = self.created_by
        if self.author is not None:
            d["author"] = self.author
        if self.comment is not None:
            d["comment"] = self.comment
        if self.empty_layer:
            d["empty_layer"] = True
        return _put_extra(d, self.extra)


_TOP_KEYS = [
    "created",
    "author",
    "architecture",
    "os",
    "os.version",
    "os.features",
    "variant",
    "config",
    "rootfs",
    "history",
]


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The image configuration blob; its digest is the image ID."""

    architecture: str
    os: str
    rootfs: RootFS = field(default_factory=RootFS)
    config: ContainerConfig | None = None
    history: tuple[History, ...] = ()
    created: str | None = None
    author: str | None = None
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=cj.FrozenDict)

    def __post_init__(self) -> None:
        cj.freeze(self, tuples=("history", "os_features"), maps=("extra",))

    @classmethod
    def parse(cls, data: bytes) -> ImageConfig:
        return parse_config(data)

    @classmethod
    def from_dict(cls, o: dict[str, Any]) -> ImageConfig:
        w = "config"
        history = cj.as_list(o.get("history") or [], f"{w}.history")
        cc = o.get("config")
        return cls(
            architecture=cj.as_str(cj.req(o, "architecture", w), f"{w}.architecture"),
            os=cj.as_str(cj.req(o, "os", w), f"{w}.os"),
            rootfs=RootFS.from_dict(cj.req(o, "rootfs", w)),
            config=None if cc is None else ContainerConfig.from_dict(cc),
            history=tuple(History.from_dict(h, f"{w}.history[{i}]") for i, h in enumerate(history)),
            created=_time(o, "created", w),
            author=cj.opt_str(o, "author", w),
            variant=cj.opt_str(o, "variant", w) or None,
            os_version=cj.opt_str(o, "os.version", w) or None,
            os_features=cj.str_list(o.get("os.features"), f"{w}.os.features"),
            extra=_extra(o, _TOP_KEYS),
        )

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant, self.os_version, self.os_features)

    @property
    def container_config(self) -> ContainerConfig:
        """``config``, or an empty one when the image has none."""
        return self.config if self.config is not None else ContainerConfig()

    @property
    def diff_ids(self) -> tuple[Digest, ...]:
        return self.rootfs.diff_ids

    def chain_ids(self) -> list[Digest]:
        return chain_ids(self.rootfs.diff_ids)

    def history_layers(self) -> list[tuple[History, Digest | None]]:
        """Each history entry with the diff ID of the layer it made (None if empty)."""
        out: list[tuple[History, Digest | None]] = []
        ids = iter(self.rootfs.diff_ids)
        for h in self.history:
            out.append((h, None if h.empty_layer else next(ids, None)))
        return out

    def replace(self, **changes: Any) -> ImageConfig:
        """A copy with fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.created is not None:
            d["created"] = self.created
        if self.author is not None:
            d["author"] = self.author
        d["architecture"] = self.architecture
        d["os"] = self.os
        if self.os_version:
            d["os.version"] = self.os_version
        if self.os_features:
            d["os.features"] = list(self.os_features)
        if self.variant:
            d["variant"] = self.variant
        if self.config is not None:
            d["config"] = self.config.to_dict()
        d["rootfs"] = self.rootfs.to_dict()
        if self.history:
            d["history"] = [h.to_dict() for h in self.history]
        return _put_extra(d, self.extra)

    def to_json(self) -> bytes:
        """Canonical bytes; their digest is the new image's ID."""
        return cj.dumps(self.to_dict())


def parse_config(data: bytes) -> ImageConfig:
    """Validate and parse an image config blob; raises InvalidManifest."""
    return ImageConfig.from_dict(cj.loads_object(data, "config"))


def chain_ids(diff_ids: Sequence[str]) -> list[Digest]:
    """Chain IDs of a layer stack: chainID(0) = diffID(0),
    chainID(n) = sha256(chainID(n-1) + " " + diffID(n))."""
    out: list[Digest] = []
    for d in diff_ids:
        diff = Digest(d)
        if not out:
            out.append(diff)
        else:
            h = hashlib.sha256(f"{out[-1]} {diff}".encode())
            out.append(Digest(f"sha256:{h.hexdigest()}"))
    return out
