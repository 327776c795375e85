"""``(did you mean RUN?)``: the closest option within edit distance 2, as BuildKit suggests."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["closest", "levenshtein", "with_suggestion"]


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute), O(len(a)*len(b)) time, O(len(b)) memory."""
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _match_case(option: str, original: str) -> str:
    if original == original.lower():
        return option.lower()
    if original == original.upper():
        return option.upper()
    return option


def closest(value: str, options: Iterable[str], *, case_sensitive: bool = True) -> str | None:
    """The option nearest to ``value`` (distance < 3), None if none is or ``value`` is one."""
    if len(value) > 64:  # nothing sensible to suggest, and keeps the cost bounded
        return None
    probe = value if case_sensitive else value.lower()
    best: str | None = None
    best_distance = 3
    for option in options:
        candidate = option if case_sensitive else option.lower()
        if candidate == probe:
            return None
        distance = levenshtein(probe, candidate)
        if distance < best_distance:
            best = option if case_sensitive else _match_case(option, value)
            best_distance = distance
    return best


def with_suggestion(
    message: str, value: str, options: Iterable[str], *, case_sensitive: bool = True
) -> str:
    match = closest(value, options, case_sensitive=case_sensitive)
    return f"{message} (did you mean {match}?)" if match else message
