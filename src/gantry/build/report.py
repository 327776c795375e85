"""Texts a build shows besides progress: Dockerfile excerpts, check results, warnings.

Formats are BuildKit's and buildx's, so output reads as ``docker build``'s does:

- :func:`excerpt` is BuildKit's source excerpt (``Dockerfile:3`` over ``---`` lines,
  ``>>>`` on the lines in question, with a little context around them);
- :func:`format_check` is ``docker build --check``: ``Check complete, ...`` then one
  ``WARNING: Rule - URL`` block per finding, sorted by line;
- :func:`format_warnings` is the list buildx prints after a build
  (`` 2 warnings found:`` then `` - Rule: detail (line N)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gantry.dockerfile.checks import CheckReport, Finding

_RULE = "-" * 20


def excerpt(file: str, source: Sequence[str], start: int, end: int | None = None) -> list[str]:
    """Lines ``start..end`` of ``source`` (1-based) marked ``>>>``, with context.

    Context as BuildKit's ``errdefs.Source.Print``: a single line gets up to two lines
    on each side, a range one; the header names the range asked for.
    """
    end = start if end is None or end < start else end
    if start < 1 or start > len(source):
        return []
    end = min(end, len(source))
    lo, hi = start, end
    pad = 4 if start == end else 2
    p = 0
    while p < pad:
        if lo > 1:
            lo -= 1
            p += 1
        if hi < len(source):
            hi += 1
            p += 1
        p += 1
    where = f"{file}:{start}" + (f"-{end}" if end != start else "")
    out = [where, _RULE]
    for i in range(lo, hi + 1):
        mark = ">>>" if start <= i <= end else "   "
        out.append(f" {i:>3} | {mark} {source[i - 1]}")
    out.append(_RULE)
    return out


def _count(n: int) -> str:
    return "1 warning has been found!" if n == 1 else f"{n} warnings have been found!"


def format_check(report: CheckReport, source: Sequence[str]) -> str:
    """``docker build --check`` output for ``report`` (``source``: the Dockerfile lines)."""
    out: list[str] = []
    findings = sorted(report.findings, key=lambda f: (f.line != 0, f.line, f.rule.name))
    if findings:
        out.append("Check complete, " + _count(len(findings)))
    for f in findings:
        out.append("")
        label = "ERROR" if f.level == "error" else "WARNING"
        out.append(f"{label}: {f.rule.name}" + (f" - {f.rule.url}" if f.rule.url else ""))
        out.append(f.message)
        if f.line:
            out += excerpt(f.file or report.file or "Dockerfile", source, f.line, f.end_line)
    if not findings and report.error is None:
        out.append("Check complete, no warnings found.")
    return "\n".join(out)


def format_warnings(findings: Sequence[Finding]) -> str:
    """What buildx prints after a build that had check warnings ('' when none)."""
    if not findings:
        return ""
    n = len(findings)
    head = "1 warning found:" if n == 1 else f"{n} warnings found:"
    lines = [f" {head}"]
    for f in sorted(findings, key=lambda f: (f.line, f.rule.name)):
        where = f" (line {f.line})" if f.line else ""
        lines.append(f" - {f.rule.name}: {f.message}{where}")
    return "\n".join(lines)


def unconsumed_warning(names: Sequence[str]) -> str:
    """Docker's note about ``--build-arg`` values no ARG used ('' when none)."""
    if not names:
        return ""
    return f"[Warning] One or more build-args [{' '.join(names)}] were not consumed"
