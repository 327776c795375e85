"""Platforms (``linux/amd64``, ``linux/arm64/v8``...) as Docker and containerd spell them.

Normalization follows containerd's ``platforms`` package, which Docker uses for
``--platform``: ``x86_64``/``x86-64`` -> ``amd64``, ``aarch64`` -> ``arm64`` (whose
default variant ``v8`` is dropped, so ``linux/arm64/v8`` == ``linux/arm64``),
``armhf`` -> ``arm/v7``, ``armel`` -> ``arm/v6``, bare ``arm`` -> ``arm/v7``,
``i386`` -> ``386``, ``macos`` -> ``darwin``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gantry.errors import UsageError

from . import canonical as cj

KNOWN_OS = frozenset(
    [
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "wasip1",
        "windows",
        "zos",
    ]
)
KNOWN_ARCH = frozenset(
    [
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "ppc64",
        "ppc64le",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
    ]
)
_COMPONENT = re.compile(r"^[A-Za-z0-9_-]+$")


def _normalize_os(os: str) -> str:
    os = os.lower()
    return "darwin" if os == "macos" else os


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        return "arm64", variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
        return "arm", variant
    return arch, variant


@dataclass(frozen=True, slots=True)
class Platform:
    """An image platform; ``str()`` gives ``os/arch[/variant]``."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, specifier: str) -> Platform:
        """Parse a ``--platform`` value (``linux``, ``arm64``, ``linux/arm/v7``), normalized.

        A single component is an OS (architecture of this host) or an
        architecture (OS linux), as containerd reads it.
        """
        bad = f'"{specifier}": unknown operating system or architecture: invalid argument'
        if "*" in specifier:
            raise UsageError(f'"{specifier}": wildcards not yet supported: invalid argument')
        parts = specifier.split("/")
        for part in parts:
            if not _COMPONENT.fullmatch(part):
                raise UsageError(
                    f'"{part}" is an invalid component of "{specifier}": platform specifier'
                    ' component must match "^[A-Za-z0-9_-]+$": invalid argument'
                )
        if len(parts) == 1:
            word = parts[0].lower()
            if _normalize_os(word) in KNOWN_OS:
                host = host_platform()
                return cls(_normalize_os(word), host.architecture, host.variant)
            arch, variant = _normalize_arch(word, "")
            if arch in KNOWN_ARCH:
                return cls("linux", arch, variant or None)
            raise UsageError(bad)
        if len(parts) in (2, 3):
            variant = parts[2] if len(parts) == 3 else ""
            return cls(parts[0], parts[1], variant or None).normalized()
        raise UsageError(bad)

    def normalized(self) -> Platform:
        arch, variant = _normalize_arch(self.architecture, self.variant or "")
        return Platform(
            _normalize_os(self.os), arch, variant or None, self.os_version, self.os_features
        )

    def matches(self, other: Platform) -> bool:
        """Whether ``other`` (e.g. an index entry) is this platform, after normalization.

        The OS version only counts on Windows, where it must be equal when both
        sides give one.
        """
        a, b = self.normalized(), other.normalized()
        if (a.os, a.architecture, a.variant) != (b.os, b.architecture, b.variant):
            return False
        return not (
            a.os == "windows" and a.os_version and b.os_version and a.os_version != b.os_version
        )

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s

    # --- JSON (index entries: "platform": {...}) -------------------------------
    @classmethod
    def from_dict(cls, obj: Any, where: str = "platform") -> Platform:
        o = cj.as_object(obj, where)
        arch = cj.as_str(cj.req(o, "architecture", where), f"{where}.architecture")
        os = cj.as_str(cj.req(o, "os", where), f"{where}.os")
        return cls(
            os=os,
            architecture=arch,
            variant=cj.opt_str(o, "variant", where) or None,
            os_version=cj.opt_str(o, "os.version", where) or None,
            os_features=cj.str_list(o.get("os.features"), f"{where}.os.features"),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            d["os.version"] = self.os_version
        if self.os_features:
            d["os.features"] = list(self.os_features)
        if self.variant:
            d["variant"] = self.variant
        return d


def _host_arm_variant(machine: str) -> str:
    m = re.match(r"armv(\d)", machine)
    return f"v{m.group(1)}" if m else "v7"


def host_platform() -> Platform:
    """The platform of this machine, normalized (``linux/amd64``, ``linux/arm64``...)."""
    import platform as _pyplatform  # only when the host platform is asked for

    os = _normalize_os(_pyplatform.system() or "linux")
    machine = _pyplatform.machine().lower()
    variant = _host_arm_variant(machine) if machine.startswith("arm") and machine != "arm64" else ""
    if machine.startswith("armv"):
        machine = "arm"
    elif machine in ("i486", "i586", "i686"):
        machine = "386"
    arch, variant = _normalize_arch(machine, variant)
    return Platform(os, arch, variant or None)
