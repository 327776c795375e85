"""gantry.runtime: run processes in containers with an OCI runtime (runc, or crun).

- :mod:`~gantry.runtime.overlay`: overlay mounts of layer stacks (``overlay.overlay`` is the
  context manager; not re-exported here, it would shadow the module), whiteout/opaque helpers
- :mod:`~gantry.runtime.spec`: OCI ``config.json`` generation with Docker's defaults
- :mod:`~gantry.runtime.seccomp`: Docker's default seccomp policy
- :mod:`~gantry.runtime.users`: ``--user`` resolution against the image's passwd/group
- :mod:`~gantry.runtime.rootfs`: path lookups that never leave an untrusted rootfs
- :mod:`~gantry.runtime.etcfiles`: the container's hosts, resolv.conf, hostname
- :mod:`~gantry.runtime.oci_runtime`: runtime detection and runc/crun process control
- :mod:`~gantry.runtime.stubs`: keep runtime-created mount points out of layers
- :mod:`~gantry.runtime.run`: ``run_container``, the one call a RUN step needs
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gantry.runtime.oci_runtime import ContainerState, OCIRuntime, detect_runtime
    from gantry.runtime.overlay import OverlayMount, mount_overlay, unmount
    from gantry.runtime.run import run_container
    from gantry.runtime.spec import Mount, Resources, Rlimit, SpecOptions, generate, write_config
    from gantry.runtime.users import ExecUser, resolve_user

#: Where each name of the public API lives; a module is imported when a name of it is
#: first asked for, so that ``import gantry.runtime.spec`` does not load runc control,
#: overlay mounts and ``run_container`` as well.
_WHERE = {
    "ContainerState": "oci_runtime",
    "OCIRuntime": "oci_runtime",
    "detect_runtime": "oci_runtime",
    "OverlayMount": "overlay",
    "mount_overlay": "overlay",
    "unmount": "overlay",
    "run_container": "run",
    "Mount": "spec",
    "Resources": "spec",
    "Rlimit": "spec",
    "SpecOptions": "spec",
    "generate": "spec",
    "write_config": "spec",
    "ExecUser": "users",
    "resolve_user": "users",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:  # a submodule (``from gantry.runtime import spec``) is found by import
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ContainerState",
    "ExecUser",
    "Mount",
    "OCIRuntime",
    "OverlayMount",
    "Resources",
    "Rlimit",
    "SpecOptions",
    "detect_runtime",
    "generate",
    "mount_overlay",
    "resolve_user",
    "run_container",
    "unmount",
    "write_config",
]
