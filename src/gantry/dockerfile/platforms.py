"""Platforms (``linux/arm64``) and the automatic platform ARGs BuildKit defines.

:class:`Platform` parses and prints ``os/arch[/variant]`` as containerd's platforms
package does; :func:`platform_args` gives the values of ``BUILDPLATFORM``,
``TARGETARCH``... for a build (the host for both unless told otherwise).
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PLATFORM_ARGS", "Platform", "host_platform", "platform_args"]

#: The automatic global args, in BuildKit's order.
PLATFORM_ARGS: tuple[str, ...] = (
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
)

_ARCHES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


@dataclass(frozen=True)
class Platform:
    """``os/arch[/variant]`` as containerd's platforms package writes it."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""

    def __str__(self) -> str:
        out = f"{self.os}/{self.architecture}"
        return f"{out}/{self.variant}" if self.variant else out

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/arm64``, ``linux/arm/v7``, ``linux`` (host arch), ``arm64`` (linux)...

        Raises :class:`ValueError` for what containerd would refuse.
        """
        parts = text.strip().lower().split("/")
        if not all(parts) or len(parts) > 3:
            raise ValueError(f"{text!r}: invalid platform")
        oses = {"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "illumos"}
        known_arches = set(_ARCHES.values()) | {"mips64le", "loong64", "wasm"}
        if len(parts) == 1:
            if parts[0] in oses:
                host = host_platform()
                return cls(parts[0], host.architecture, host.variant)
            arch = _ARCHES.get(parts[0], parts[0])
            if arch not in known_arches:
                raise ValueError(f"{text!r}: unknown operating system or architecture")
            return cls("linux", arch, "v7" if arch == "arm" else "")
        os_name, arch = parts[0], _ARCHES.get(parts[1], parts[1])
        variant = parts[2] if len(parts) == 3 else ("v7" if arch == "arm" else "")
        if arch == "arm64" and variant == "v8":
            variant = ""
        return cls(os_name, arch, variant)


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    arch = _ARCHES.get(machine, machine or "amd64")
    return Platform("linux", arch, "v7" if arch == "arm" else "")


def platform_args(
    build: Platform | None = None,
    target: Platform | None = None,
    *,
    target_stage: str = "",
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The automatic global args; a ``--build-arg`` of the same name replaces one."""
    bp = build or host_platform()
    tp = target or bp
    values = {
        "BUILDPLATFORM": str(bp),
        "BUILDOS": bp.os,
        "BUILDOSVERSION": bp.os_version,
        "BUILDARCH": bp.architecture,
        "BUILDVARIANT": bp.variant,
        "TARGETPLATFORM": str(tp),
        "TARGETOS": tp.os,
        "TARGETOSVERSION": tp.os_version,
        "TARGETARCH": tp.architecture,
        "TARGETVARIANT": tp.variant,
        "TARGETSTAGE": target_stage,
    }
    for key, value in (overrides or {}).items():
        if key in values:
            values[key] = value
    return values
