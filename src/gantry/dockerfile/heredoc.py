"""Heredocs in RUN, COPY and ADD (``RUN <<EOF``, ``COPY <<-'EOT' /dst``).

BuildKit finds heredocs in two steps, and so do we:

1. split the whole instruction line into shell words, keeping quotes and escapes
   as written, and gluing ``<<`` (plus an optional ``-`` and following blanks) to
   the next word (``RUN <<  EOF`` is one heredoc word);
2. match each word against ``[fd]<<[-][blanks]WORD``; the word is lexed once with
   quotes removed and once with quotes kept: when the quote counts differ, part
   of the word was quoted and the body is not expanded (``<<'EOF'``,
   ``<<E"O"F``), exactly like sh.

The parser then reads the body lines verbatim (comments, blank lines, trailing
escapes included) until a line equal to the name (after stripping leading tabs
for ``<<-``). The body is stored as written; :func:`chomp` removes the tabs when
the instruction is planned, so the raw text stays recoverable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gantry.dockerfile.goquote import go_quote
from gantry.errors import DockerfileError

__all__ = [
    "Heredoc",
    "chomp",
    "heredocs_from_line",
    "parse_heredoc",
]

# [fd]<<[-][blanks]rest -- rest must not contain another '<'; used with fullmatch.
# ASCII: Go's \d is [0-9] only (an Arabic-Indic digit is no file descriptor).
_HEREDOC = re.compile(r"(\d*)<<(-?)[\t\n\f\r ]*([^<]*)", re.ASCII)
_MAX_FD = (1 << 64) - 1  # strconv.ParseUint(s, 10, 0) saturates here
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
_BLANKS = frozenset(" \t\n\r\f\v")


@dataclass(frozen=True, kw_only=True)
class Heredoc:
    """One heredoc: ``name`` is the terminator, ``content`` the body as written."""

    name: str
    file_descriptor: int = 0
    expand: bool = True
    chomp: bool = False
    content: str = ""

    def data(self) -> str:
        """The body as the instruction sees it (leading tabs removed for ``<<-``)."""
        return chomp(self.content) if self.chomp else self.content


def chomp(text: str) -> str:
    """Remove leading tabs from every line (what ``<<-`` does to the body)."""
    return _LEADING_TABS.sub("", text)


class _LexError(Exception):
    pass


def _split_words(text: str, *, raw_quotes: bool, raw_escapes: bool) -> list[str]:
    """Shell-like word splitting without expansion (``$VAR`` stays as written).

    Mirrors the subset of BuildKit's lexer that heredoc detection relies on:
    single quotes take everything literally, double quotes honour ``\\"``,
    ``\\$`` and ``\\\\``, a backslash outside quotes escapes the next character,
    and ``<<`` swallows an optional ``-`` and the blanks after it.
    """
    words: list[str] = []
    buf: list[str] = []
    in_word = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise _LexError(
                    "unexpected end of statement while looking for matching single-quote"
                )
            body = text[i + 1 : end]
            buf.append(f"'{body}'" if raw_quotes else body)
            in_word = True
            i = end + 1
        elif ch == '"':
            i += 1
            part: list[str] = ['"'] if raw_quotes else []
            while True:
                if i >= n:
                    raise _LexError(
                        "unexpected end of statement while looking for matching double-quote"
                    )
                c = text[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n:
                    nxt = text[i + 1]
                    if nxt in '"$\\':
                        if raw_escapes:
                            part.append(c)
                        part.append(nxt)
                        i += 2
                        continue
                elif c == "\\":
                    # escape at the very end: dropped
                    i += 1
                    continue
                part.append(c)
                i += 1
            if raw_quotes:
                part.append('"')
            buf.append("".join(part))
            in_word = True
        elif ch == "\\":
            if i + 1 >= n:
                break
            if raw_escapes:
                buf.append(ch)
            buf.append(text[i + 1])
            in_word = True
            i += 2
        elif ch == "<" and i + 1 < n and text[i + 1] == "<":
            j = i + 2
            if j < n and text[j] == "-":
                j += 1
            while j < n and text[j] in _BLANKS:
                j += 1
            buf.append(text[i:j])
            in_word = True
            i = j
        elif ch in _BLANKS or ch.isspace():
            if in_word:
                word = "".join(buf)
                if word:
                    words.append(word)
                buf.clear()
                in_word = False
            i += 1
        else:
            buf.append(ch)
            in_word = True
            i += 1
    word = "".join(buf)
    if word:
        words.append(word)
    return words


def _count_quotes(s: str) -> int:
    return s.count("'") + s.count('"')


def _parse_fd(text: str) -> int:
    """BuildKit ignores ParseUint's error: "" is 0, too many digits give the maximum."""
    if not text:
        return 0
    if len(text.lstrip("0")) > 20:
        return _MAX_FD
    return min(int(text), _MAX_FD)


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc a single word opens, or None when it is not a heredoc word.

    Raises :class:`DockerfileError` (without a line) when the word is a heredoc
    whose name has unbalanced quotes (``<<'EOF``).
    """
    m = _HEREDOC.fullmatch(word)
    if m is None:
        return None
    fd_text, dash, rest = m.groups()
    if not rest:
        return None
    try:
        words = _split_words(rest, raw_quotes=False, raw_escapes=False)
        if len(words) != 1:
            return None
        raw = _split_words(rest, raw_quotes=True, raw_escapes=False)
    except _LexError as exc:
        raise DockerfileError(f"failed to process {go_quote(rest)}: {exc}") from None
    if len(raw) != 1:
        raise DockerfileError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    name = words[0]
    return Heredoc(
        name=name,
        file_descriptor=_parse_fd(fd_text),
        expand=_count_quotes(name) == _count_quotes(raw[0]),
        chomp=dash == "-",
    )


def heredocs_from_line(line: str) -> list[Heredoc]:
    """The heredocs an instruction line opens, in the order their bodies follow."""
    if "<<" not in line:
        return []
    try:
        words = _split_words(line, raw_quotes=True, raw_escapes=True)
    except _LexError:
        # BuildKit ignores the lexer's error here: no heredocs
        return []
    docs: list[Heredoc] = []
    for word in words:
        doc = parse_heredoc(word)
        if doc is not None:
            docs.append(doc)
    return docs
