"""Column alignment with the semantics of Go's ``text/tabwriter`` (elastic tabstops).

docker/cli renders every ``table`` format through a tabwriter created as
``NewWriter(out, 10, 1, 3, ' ', 0)`` (minwidth 10, tabwidth 1, padding 3, spaces),
measuring cells in terminal columns (East Asian wide runes count 2). The rules that
make its output recognisable, kept here:

- cells are *terminated* by ``\\t`` (or ``\\v``); the text after the last tab of a
  line is a trailing cell that belongs to no column and is never padded;
- a column is a run of consecutive lines that all have a cell in it; its width is
  the widest cell plus padding, at least ``minwidth``;
- an empty cell inside a column is padded too (so a row ending in ``\\t`` keeps
  trailing spaces, as ``docker context ls`` shows);
- ``\\f`` ends every column (a section break) and is written as a newline; a line
  with no tab also ends every column.

Only the padding character and alignment options docker uses are offered (plus
``debug`` bars and discarding empty soft columns); HTML filtering and escape
characters are not needed by any gantry output.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["TabWriter", "cell_width", "docker_tabwriter", "tabulate"]

_BREAKS = re.compile("[\t\v\n\f]")


@dataclass(slots=True)
class _Cell:
    text: str
    width: int
    htab: bool  # terminated by a hard tab (\t) rather than \v or a line break


def cell_width(s: str) -> int:
    """Terminal width of ``s``: wide/fullwidth runes 2, combining and control runes 0."""
    if s.isascii():
        if s.isprintable():
            return len(s)
        return sum(1 for ch in s if " " <= ch != "\x7f")
    width = 0
    for ch in s:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o < 0xA0:
            continue
        cat = unicodedata.category(ch)
        if cat in ("Mn", "Me", "Cf") or o == 0x200B:
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


class TabWriter:
    """Buffering aligner: :meth:`write` text, then :meth:`flush` to get the output."""

    def __init__(
        self,
        minwidth: int = 0,
        tabwidth: int = 8,
        padding: int = 1,
        padchar: str = " ",
        *,
        align_right: bool = False,
        discard_empty_columns: bool = False,
        debug: bool = False,
        display_width: bool = True,
    ) -> None:
        if minwidth < 0 or tabwidth < 0 or padding < 0:
            raise ValueError("negative minwidth, tabwidth, or padding")
        if len(padchar) != 1:
            raise ValueError("padchar must be one character")
        self.minwidth = minwidth
        self.tabwidth = tabwidth
        self.padding = padding
        self.padchar = padchar
        self.align_right = align_right and padchar != "\t"
        self.discard_empty_columns = discard_empty_columns
        self.debug = debug
        # docker's fork measures terminal columns; Go's text/tabwriter counts runes
        self._width = cell_width if display_width else len
        self._out: list[str] = []
        self._reset()

    def _reset(self) -> None:
        self._cell: list[str] = []  # text of the current, unterminated cell
        self._lines: list[list[_Cell]] = [[]]
        self._widths: list[int] = []

    # input ---------------------------------------------------------------------
    def write(self, text: str) -> None:
        start = 0
        for m in _BREAKS.finditer(text):
            i = m.start()
            ch = text[i]
            self._cell.append(text[start:i])
            start = i + 1
            ncells = self._terminate_cell(ch == "\t")
            if ch in "\n\f":
                self._lines.append([])
                if ch == "\f" or ncells == 1:
                    # A form feed ends all columns; so does a line without tabs
                    # (its only cell is a trailing cell): format what we have.
                    self._flush_lines()
                    if ch == "\f" and self.debug:
                        self._out.append("---\n")
        self._cell.append(text[start:])

    def _terminate_cell(self, htab: bool) -> int:
        text = "".join(self._cell)
        self._cell = []
        line = self._lines[-1]
        line.append(_Cell(text, self._width(text), htab))
        return len(line)

    def flush(self) -> str:
        """Format everything written so far and return the output produced since the
        last flush (the writer is reusable afterwards)."""
        if any(self._cell):
            self._terminate_cell(False)
        self._flush_lines()
        out = "".join(self._out)
        self._out = []
        return out

    def _flush_lines(self) -> None:
        self._format(0, len(self._lines))
        trailing = "".join(self._cell)
        self._reset()
        self._cell = [trailing] if trailing else []

    # formatting ------------------------------------------------------------------
    def _format(self, line0: int, line1: int) -> None:
        column = len(self._widths)
        this = line0
        while this < line1:
            if column >= len(self._lines[this]) - 1:
                this += 1
                continue
            # this line has a cell in `column`: print the lines above, then find
            # the block of consecutive lines that share the column
            self._write_lines(line0, this)
            line0 = this
            width = self.minwidth
            discardable = True
            while this < line1:
                line = self._lines[this]
                if column >= len(line) - 1:
                    break
                c = line[column]
                width = max(width, c.width + self.padding)
                if c.width > 0 or c.htab:
                    discardable = False
                this += 1
            if discardable and self.discard_empty_columns:
                width = 0
            self._widths.append(width)
            self._format(line0, this)
            self._widths.pop()
            line0 = this
            this += 1  # the line that ended the block has no cell here
        self._write_lines(line0, line1)

    def _write_padding(self, textw: int, cellw: int, use_tabs: bool) -> None:
        if self.padchar == "\t" or use_tabs:
            if self.tabwidth == 0:
                return
            cellw = (cellw + self.tabwidth - 1) // self.tabwidth * self.tabwidth
            n = cellw - textw
            self._out.append("\t" * ((n + self.tabwidth - 1) // self.tabwidth))
            return
        self._out.append(self.padchar * (cellw - textw))

    def _write_lines(self, line0: int, line1: int) -> None:
        out = self._out
        widths = self._widths
        if self.padchar != "\t" and not self.align_right and not self.debug:
            # docker's settings: text then spaces up to the column width, one join per line
            pad = self.padchar
            nwidths = len(widths)
            last = len(self._lines) - 1
            for i in range(line0, line1):
                parts = []
                for j, c in enumerate(self._lines[i]):
                    if c.text:
                        parts.append(c.text)
                    if j < nwidths:
                        parts.append(pad * (widths[j] - c.width))
                if i < last:
                    parts.append("\n")
                out.append("".join(parts))
            return
        for i in range(line0, line1):
            line = self._lines[i]
            use_tabs = False
            for j, c in enumerate(line):
                if j > 0 and self.debug:
                    out.append("|")
                if not c.text:
                    if j < len(widths):
                        self._write_padding(c.width, widths[j], use_tabs)
                    continue
                use_tabs = False
                if not self.align_right:
                    out.append(c.text)
                    if j < len(widths):
                        self._write_padding(c.width, widths[j], False)
                else:
                    if j < len(widths):
                        self._write_padding(c.width, widths[j], False)
                    out.append(c.text)
            if i + 1 < len(self._lines):
                out.append("\n")


def docker_tabwriter() -> TabWriter:
    """The writer docker/cli's table formats use: ``NewWriter(out, 10, 1, 3, ' ', 0)``."""
    return TabWriter(10, 1, 3, " ")


def tabulate(
    text: str,
    minwidth: int = 10,
    tabwidth: int = 1,
    padding: int = 3,
    padchar: str = " ",
    **flags: bool,
) -> str:
    """Align tab-terminated cells in ``text`` (defaults: docker's table settings)."""
    w = TabWriter(minwidth, tabwidth, padding, padchar, **flags)
    w.write(text)
    return w.flush()
