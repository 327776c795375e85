"""One call for a RUN step: a process in a mounted rootfs, to completion.

:func:`run_container` writes the bundle (config.json, hosts, resolv.conf, hostname), runs it
with the detected runtime, streams the output, removes the mount stubs the runtime created
in the rootfs (so they never reach the layer) and returns the exit code.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

from gantry.runtime.etcfiles import write_etc_files
from gantry.runtime.oci_runtime import OCIRuntime, OutputCallback, detect_runtime
from gantry.runtime.spec import SpecOptions, generate, write_config
from gantry.runtime.stubs import cleaned_mount_stubs

#: The hostname BuildKit gives RUN steps.
BUILD_HOSTNAME = "buildkitsandbox"


def run_container(
    rootfs: str | os.PathLike[str],
    options: SpecOptions,
    *,
    on_output: OutputCallback | None = None,
    runtime: OCIRuntime | None = None,
    root: str | os.PathLike[str] | None = None,
    bundle_dir: str | os.PathLike[str] | None = None,
    container_id: str | None = None,
    timeout: float | None = None,
    etc_files: bool = True,
) -> int:
    """Run ``options.args`` in ``rootfs`` (e.g. a mounted overlay); return the exit code.

    ``options.rootfs`` is replaced by ``rootfs``. Without ``options.hostname`` the container
    is called ``buildkitsandbox`` as in BuildKit. With ``etc_files`` the container gets its
    own hosts/resolv.conf/hostname unless ``options`` already names files for them.
    ``bundle_dir`` (default: a temporary directory under the runtime's state root, removed
    afterwards) receives config.json and those files. ``runtime`` defaults to
    ``detect_runtime(root)``.
    """
    rt = runtime or detect_runtime(root)
    hostname = options.hostname or BUILD_HOSTNAME
    own_dir = bundle_dir is None
    if bundle_dir is None:
        rt.state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        bundle = Path(tempfile.mkdtemp(prefix="bundle-", dir=rt.state_root))
    else:
        bundle = Path(bundle_dir)
        bundle.mkdir(parents=True, exist_ok=True)
    try:
        hosts_file, resolv_conf, hostname_file = (
            options.hosts_file,
            options.resolv_conf,
            options.hostname_file,
        )
        if etc_files:
            hosts, resolv, name = write_etc_files(
                bundle, hostname=hostname, network=options.network
            )
            hosts_file = hosts_file or str(hosts)
            resolv_conf = resolv_conf or str(resolv)
            hostname_file = hostname_file or str(name)
        opts = dataclasses.replace(
            options,
            rootfs=str(Path(rootfs).absolute()),
            hostname=hostname,
            hosts_file=hosts_file,
            resolv_conf=resolv_conf,
            hostname_file=hostname_file,
        )
        spec = generate(opts)
        write_config(bundle, spec)
        with cleaned_mount_stubs(rootfs, spec):
            return rt.run(bundle, container_id, on_output=on_output, timeout=timeout)
    finally:
        if own_dir:
            shutil.rmtree(bundle, ignore_errors=True)
