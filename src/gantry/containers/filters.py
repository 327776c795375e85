"""``ps --filter`` and ``container prune --filter`` as Docker evaluates them.

Values of one key are OR-ed, keys are AND-ed. ``name`` and ``id`` match as regular
expressions / prefixes (Docker: ``name`` is a regexp search on the name with its
leading ``/``; ``id`` a prefix).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from gantry.containers.state import STATES, Container
from gantry.errors import UsageError

PS_FILTERS = ("id", "name", "label", "label!", "exited", "status", "ancestor", "before", "since",
              "volume", "network", "health", "publish", "expose", "isolation", "is-task")  # fmt: skip
PRUNE_FILTERS = ("until", "label", "label!")
HEALTH_STATES = ("starting", "healthy", "unhealthy", "none")


def _label_match(labels: Mapping[str, str], spec: str) -> bool:
    key, sep, value = spec.partition("=")
    if key not in labels:
        return False
    return not sep or labels[key] == value


def _timestamp(value: str) -> float:
    from gantry.store.filters import parse_timestamp

    return parse_timestamp(value)


def match_ps(
    c: Container,
    filters: Mapping[str, Iterable[str]],
    *,
    lookup: Callable[[str], Container | None],
    image_ids: Callable[[str], set[str]] | None = None,
) -> bool:
    for key in filters:
        if key not in PS_FILTERS:
            raise UsageError(f"invalid filter '{key}'")
    f = {k: list(v) for k, v in filters.items()}
    if "id" in f and not any(c.id.startswith(v) for v in f["id"]):
        return False
    if "name" in f and not any(re.search(v, "/" + c.name) for v in f["name"]):
        return False
    if "label" in f and not all(_label_match(c.labels, v) for v in f["label"]):
        return False
    if "label!" in f and any(_label_match(c.labels, v) for v in f["label!"]):
        return False
    if "status" in f:
        for v in f["status"]:
            if v not in STATES:
                raise UsageError(f"invalid filter 'status={v}'")
        if c.state not in f["status"]:
            return False
    if "exited" in f:
        codes = set()
        for v in f["exited"]:
            try:
                codes.add(int(v))
            except ValueError:
                raise UsageError(f"invalid filter 'exited={v}'") from None
        if c.state != "exited" or c.exit_code not in codes:
            return False
    if "health" in f:
        h = str(c.health.get("Status") or "none")
        if h not in f["health"]:
            return False
    if "ancestor" in f:
        if image_ids is None:
            return False
        if not any(c.image_id in image_ids(v) or c.image_ref == v for v in f["ancestor"]):
            return False
    for key, newer in (("before", False), ("since", True)):
        for v in f.get(key, []):
            other = lookup(v)
            if other is None:
                raise UsageError(f"No such container: {v}")
            if newer and not c.created > other.created:
                return False
            if not newer and not c.created < other.created:
                return False
    if "volume" in f:
        mounts = c.settings.get("Mounts") or []
        names = {str(m.get("Name") or m.get("Source")) for m in mounts} | {
            str(m.get("Destination")) for m in mounts
        }
        if not any(v in names for v in f["volume"]):
            return False
    if "network" in f and str(c.host_config.get("NetworkMode")) not in f["network"]:
        return False
    if "expose" in f or "publish" in f:
        ports = set((c.config.get("ExposedPorts") or {}).keys())
        published = set((c.host_config.get("PortBindings") or {}).keys())
        for key, have in (("expose", ports), ("publish", published)):
            for v in f.get(key, []):
                want = v if "/" in v else v + "/tcp"
                if want not in have:
                    return False
    return True


def match_prune(c: Container, filters: Mapping[str, Iterable[str]]) -> bool:
    for key in filters:
        if key not in PRUNE_FILTERS:
            raise UsageError(f"invalid filter '{key}'")
    f = {k: list(v) for k, v in filters.items()}
    for v in f.get("until", []):
        if c.created >= _timestamp(v):
            return False
    if "label" in f and not all(_label_match(c.labels, v) for v in f["label"]):
        return False
    return not ("label!" in f and any(_label_match(c.labels, v) for v in f["label!"]))
