"""gantry.distribution: the registry client (pull, push, login, remote inspect, copy).

Library API::

    from gantry.store import Store
    from gantry.distribution import pull, push

    with Store() as store:
        result = pull(store, "127.0.0.1:5000/app:1", progress=print)
        push(store, "127.0.0.1:5000/app:1")
    copy("127.0.0.1:5000/app:1", "oci:/tmp/layout:v1")  # no store needed

HTTP goes through :class:`~gantry.distribution.transport.Transport` (urllib3 by
default); see ``docs/distribution.md``.
"""

from __future__ import annotations

from .client import RegistryClient, RetryPolicy
from .copy import CopyResult, copy
from .credentials import ConfigFile, Credential
from .progress import Event, ProgressCallback
from .pull import PullResult, pull, pull_all_tags
from .push import PushResult, push, push_all_tags

__all__ = [
    "ConfigFile",
    "CopyResult",
    "Credential",
    "Event",
    "ProgressCallback",
    "PullResult",
    "PushResult",
    "RegistryClient",
    "RetryPolicy",
    "copy",
    "pull",
    "pull_all_tags",
    "push",
    "push_all_tags",
]
