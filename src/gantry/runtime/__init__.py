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

from gantry.runtime.oci_runtime import ContainerState, OCIRuntime, detect_runtime
from gantry.runtime.overlay import OverlayMount, mount_overlay, unmount
from gantry.runtime.run import run_container
from gantry.runtime.spec import Mount, Resources, Rlimit, SpecOptions, generate, write_config
from gantry.runtime.users import ExecUser, resolve_user

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
