"""gantry.containers: containers from images, Docker's lifecycle without a daemon.

- :mod:`~gantry.containers.lifecycle`: :class:`Containers` (create, start, run_attached,
  stop, kill, restart, wait, remove, prune, inspect)
- :mod:`~gantry.containers.config`: :class:`CreateOptions` and Docker's merge of the
  user's settings with the image's (Entrypoint/Cmd rules, Env, ports)
- :mod:`~gantry.containers.state`: :class:`Container`, a view of the store's container
  records (``Store.add_container``/``update_container``/...), and Docker's status strings
- :mod:`~gantry.containers.supervisor`: the per-container supervisor process (conmon's job)
- :mod:`~gantry.containers.logs`: json-file logs (writer and reader)
- :mod:`~gantry.containers.bundle`: mounts and the OCI bundle of a container
- :mod:`~gantry.containers.volumes`: named volumes
- :mod:`~gantry.containers.names`: IDs and random names
"""

from gantry.containers.config import CreateOptions
from gantry.containers.lifecycle import Containers
from gantry.containers.state import Container, status_text
from gantry.containers.volumes import Volume, Volumes

__all__ = ["Container", "Containers", "CreateOptions", "Volume", "Volumes", "status_text"]
