"""Parser directives: ``# syntax=``, ``# escape=`` and ``# check=`` at the top of a Dockerfile.

The rules (Dockerfile reference, "Parser directives"):

- they are comments of the form ``# name=value`` and only count before the first
  instruction, empty line or ordinary comment; after that they are comments;
- names are case-insensitive; an unknown name is an ordinary comment and also
  ends the directive block;
- each may appear at most once (``only one escape parser directive can be used``);
- ``escape`` accepts only a backslash or a backtick.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["DEFAULT_ESCAPE", "KNOWN_DIRECTIVES", "DirectiveError", "DirectiveParser", "Directives"]

DEFAULT_ESCAPE = "\\"
KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})

# Go RE2's \s is [\t\n\f\r ]; Python's would also take \v and Unicode blanks.
_DIRECTIVE = re.compile(
    r"^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$"
)


class DirectiveError(ValueError):
    """A directive is repeated or has a bad value; the parser adds file and line."""


@dataclass
class Directives:
    """The directives found, with their 1-based lines."""

    syntax: str | None = None
    escape: str = DEFAULT_ESCAPE
    check: str | None = None
    lines: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.syntax is not None:
            out["syntax"] = self.syntax
        if "escape" in self.lines:
            out["escape"] = self.escape
        if self.check is not None:
            out["check"] = self.check
        return out


class DirectiveParser:
    """Feeds on the leading lines of a file; stops at the first line that is not a directive."""

    def __init__(self) -> None:
        self.directives = Directives()
        self.done = False

    def feed(self, line: str, lineno: int) -> bool:
        """Look at one line (newline and leading blanks removed).

        Returns True when the line was a directive. Raises :class:`DirectiveError`.
        """
        if self.done:
            return False
        m = _DIRECTIVE.match(line)
        if m is None:
            self.done = True
            return False
        name = m.group(1).lower()
        value = m.group(2)
        if name not in KNOWN_DIRECTIVES:
            self.done = True
            return False
        d = self.directives
        if name in d.lines:
            raise DirectiveError(f"only one {name} parser directive can be used")
        d.lines[name] = lineno
        if name == "escape":
            if value not in ("`", "\\"):
                raise DirectiveError(f"invalid escape token '{value}' does not match ` or \\")
            d.escape = value
        elif name == "syntax":
            d.syntax = value
        else:
            d.check = value
        return True
