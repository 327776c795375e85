"""The raw Dockerfile parser: text -> a list of instruction :class:`Node` s.

This is the layer BuildKit calls ``parser.Parse``: it knows lines, directives,
comments, line continuations, heredocs, flags and each instruction's argument
syntax (JSON/exec form, shell form, ``key=value`` lists...), and nothing about
what instructions mean. :mod:`gantry.dockerfile.instructions` turns nodes into
typed instructions; :mod:`gantry.dockerfile.dump` prints nodes in BuildKit's
test-file format.

Rules kept from BuildKit, because Dockerfiles in the wild depend on them:

- the first line loses a UTF-8 BOM; every line loses trailing ``\\r``/``\\n``;
- an instruction's first line loses leading blanks; continuation lines keep
  them; the escape character (``\\`` or the ``escape`` directive's) as the last
  non-blank character of a line joins it with the next one, unless it is itself
  escaped; blanks after it are ignored;
- inside a continuation, comment lines and empty lines are skipped (empty ones
  produce a warning, as BuildKit's ``NoEmptyContinuation`` check does);
- a file whose last line ends in a continuation ends the instruction there.

Everything is linear in the size of the input: lines are scanned once, each
continuation segment is appended to a list, and no regular expression is
anchored at the end of an unbounded line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from gantry.dockerfile.directives import DirectiveError, DirectiveParser, Directives
from gantry.dockerfile.goquote import go_quote
from gantry.dockerfile.heredoc import Heredoc, heredocs_from_line
from gantry.dockerfile.shell import GO_SPACE, GO_SPACE_CHARS, go_trim_space
from gantry.errors import DockerfileError

__all__ = [
    "INSTRUCTIONS",
    "Node",
    "ParseResult",
    "ParseWarning",
    "extract_flags",
    "parse",
    "parse_file",
    "parse_json_array",
    "parse_words",
    "split_command",
]

#: The 18 instructions, lower-case, in the reference's order.
INSTRUCTIONS: tuple[str, ...] = (
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
)

_HEREDOC_INSTRUCTIONS = frozenset({"add", "copy", "run"})

# BuildKit's reWhitespace / tokenWhitespace: [\t\v\f\r ]+
_WS = re.compile(r"[\t\v\f\r ]+")

NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"


@dataclass
class ParseWarning:
    """A parser warning (``Empty continuation line found in: ...``) with its line."""

    message: str
    line: int
    rule: str = "NoEmptyContinuation"
    url: str = "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"


@dataclass
class Node:
    """One instruction as written.

    ``args`` are the instruction's arguments after the per-instruction syntax
    was applied (see the module doc of :mod:`gantry.dockerfile.dump` for the
    shapes); ``json`` says the arguments came from a JSON array (exec form).
    ``child`` holds the trigger of an ``ONBUILD``.
    """

    keyword: str
    args: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    original: str = ""
    start_line: int = 0
    end_line: int = 0
    json: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)
    child: Node | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The instruction, lower-case (``run``)."""
        return self.keyword.lower()

    @property
    def known(self) -> bool:
        return self.name in _DISPATCH

    def can_contain_heredoc(self) -> bool:
        node = self
        if node.name == "onbuild" and node.child is not None:
            node = node.child
        return node.name in _HEREDOC_INSTRUCTIONS and not node.json


@dataclass
class ParseResult:
    """What :func:`parse` returns: the instructions, the directives and the warnings."""

    nodes: list[Node]
    directives: Directives
    warnings: list[ParseWarning]
    file: str | None = None

    @property
    def escape(self) -> str:
        return self.directives.escape

    @property
    def start_line(self) -> int:
        return self.nodes[0].start_line

    @property
    def end_line(self) -> int:
        return self.nodes[-1].end_line


class _ArgError(Exception):
    """An argument syntax error; the parser adds the line."""


def _error(message: str, line: int, file: str | None) -> DockerfileError:
    return DockerfileError(
        f"dockerfile parse error on line {line}: {message}", file=file, line=line
    )


# --- per-instruction argument syntax -------------------------------------------------


def parse_words(rest: str, escape: str) -> list[str]:
    """Split ``rest`` into words, keeping quotes and escapes (ENV/LABEL/ARG syntax)."""
    words: list[str] = []
    word: list[str] = []
    blank_ok = False
    quote = ""
    in_quote = False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if not in_quote:
            if ch in GO_SPACE:
                if blank_ok or word:
                    words.append("".join(word))
                word.clear()
                blank_ok = False
                i += 1
                continue
            if ch in "'\"":
                quote = ch
                blank_ok = True
                in_quote = True
            elif ch == escape:
                if i + 1 == n:
                    i += 1  # an escape at the very end is dropped
                    continue
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
            continue
        # inside quotes
        if ch == quote:
            in_quote = False
        elif ch == escape and quote != "'":
            if i + 1 == n:
                in_quote = False
                i += 1
                continue
            word.append(ch)
            i += 1
            ch = rest[i]
        word.append(ch)
        i += 1
    if blank_ok or word:
        words.append("".join(word))
    return words


def _reject_constant(name: str) -> object:
    raise ValueError(name)  # NaN/Infinity are not JSON for Go


def parse_json_array(rest: str) -> list[str] | None:
    """The exec-form arguments if ``rest`` is a JSON array of strings, else None.

    Raises :class:`_ArgError` when ``rest`` is a JSON array with a non-string
    element: BuildKit refuses it instead of falling back to the shell form.
    """
    text = rest.lstrip(GO_SPACE_CHARS)
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    for item in value:
        if not isinstance(item, str):
            raise _ArgError(NOT_STRING_ARRAY)
    return value


def _whitespace_list(rest: str) -> list[str]:
    if rest == "":
        return []
    return _WS.split(rest)


def _dispatch_string(node: Node, rest: str, escape: str) -> None:
    node.args = [rest] if rest else []


def _dispatch_words(node: Node, rest: str, escape: str) -> None:
    node.args = _whitespace_list(rest)


def _dispatch_maybe_json(node: Node, rest: str, escape: str) -> None:
    if rest == "":
        return
    arr = parse_json_array(rest)
    if arr is not None:
        node.args, node.json = arr, True
    else:
        node.args = [rest]


def _dispatch_maybe_json_list(node: Node, rest: str, escape: str) -> None:
    arr = parse_json_array(rest)
    if arr is not None:
        node.args, node.json = arr, True
    else:
        node.args = _whitespace_list(rest)


def _dispatch_name_val(node: Node, rest: str, escape: str) -> None:
    words = parse_words(rest, escape)
    if not words:
        return
    if "=" not in words[0]:
        # legacy form: KEY value with spaces
        parts = _WS.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _ArgError(f"{node.name.upper()} must have two arguments")
        node.args = [parts[0], parts[1], ""]
        return
    args: list[str] = []
    for word in words:
        if "=" not in word:
            raise _ArgError(
                f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value"
            )
        key, _, value = word.partition("=")
        args += [key, value, "="]
    node.args = args


def _dispatch_name_or_name_val(node: Node, rest: str, escape: str) -> None:
    node.args = parse_words(rest, escape)


def _dispatch_healthcheck(node: Node, rest: str, escape: str) -> None:
    sep = 0
    n = len(rest)
    while sep < n and rest[sep] not in " \t\n\v\f\r":
        sep += 1
    if sep == 0:
        return
    nxt = sep
    while nxt < n and rest[nxt] in " \t\n\v\f\r":
        nxt += 1
    inner = Node(keyword="")
    _dispatch_maybe_json(inner, rest[nxt:], escape)
    node.args = [rest[:sep], *inner.args]
    node.json = inner.json


def _dispatch_onbuild(node: Node, rest: str, escape: str) -> None:
    if rest == "":
        return
    node.child = _node_from_line(rest, escape)


def _dispatch_ignore(node: Node, rest: str, escape: str) -> None:
    return


_DISPATCH = {
    "add": _dispatch_maybe_json_list,
    "arg": _dispatch_name_or_name_val,
    "cmd": _dispatch_maybe_json,
    "copy": _dispatch_maybe_json_list,
    "entrypoint": _dispatch_maybe_json,
    "env": _dispatch_name_val,
    "expose": _dispatch_words,
    "from": _dispatch_words,
    "healthcheck": _dispatch_healthcheck,
    "label": _dispatch_name_val,
    "maintainer": _dispatch_string,
    "onbuild": _dispatch_onbuild,
    "run": _dispatch_maybe_json,
    "shell": _dispatch_maybe_json,
    "stopsignal": _dispatch_string,
    "user": _dispatch_string,
    "volume": _dispatch_maybe_json_list,
    "workdir": _dispatch_string,
}


# --- lines -> command, flags, arguments ----------------------------------------------


def extract_flags(line: str) -> tuple[str, list[str]]:
    """Split leading ``--flag[=value]`` words off ``line``: (rest, flags).

    Flags end at the first word not starting with ``--``, or after a lone ``--``.
    Quotes inside a flag group words and are removed; a backslash escapes.
    """
    words: list[str] = []
    word: list[str] = []
    blank_ok = False
    quote = ""
    phase = 0  # 0: between words, 1: in a word, 2: in quotes
    pos, n = 0, len(line)
    while pos <= n:
        ch = line[pos] if pos < n else ""
        if phase == 0:
            if pos == n:
                break
            if ch in GO_SPACE:
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or line[pos + 1] != "-":
                return line[pos:], words
            phase = 1
        if pos == n:
            text = "".join(word)
            if text != "--" and (blank_ok or text):
                words.append(text)
            break
        if phase == 1:
            if ch in GO_SPACE:
                phase = 0
                text = "".join(word)
                if text == "--":
                    return line[pos:], words
                if blank_ok or text:
                    words.append(text)
                word.clear()
                blank_ok = False
                pos += 1
                continue
            if ch in "'\"":
                quote = ch
                blank_ok = True
                phase = 2
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            word.append(ch)
            pos += 1
            continue
        # phase 2: in quotes
        if ch == quote:
            phase = 1
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == n:
                phase = 1
                pos += 1
                continue
            pos += 1
            ch = line[pos]
        word.append(ch)
        pos += 1
    return "", words


def split_command(line: str) -> tuple[str, list[str], str]:
    """``RUN --x=1 echo hi`` -> (``RUN``, [``--x=1``], ``echo hi``)."""
    parts = _WS.split(go_trim_space(line), maxsplit=1)
    cmd = parts[0]
    flags: list[str] = []
    rest = ""
    if len(parts) == 2:
        rest, flags = extract_flags(parts[1])
    return cmd, flags, go_trim_space(rest)


def _node_from_line(line: str, escape: str) -> Node:
    # ONBUILD ONBUILD ... nests one node per keyword: built in a loop, not by recursion,
    # so a line of thousands of them is an error later, not a RecursionError here.
    root: Node | None = None
    parent: Node | None = None
    while True:
        cmd, flags, rest = split_command(line)
        node = Node(keyword=cmd, flags=flags, original=line)
        if parent is None:
            root = node
        else:
            parent.child = node
        if cmd.lower() == "onbuild" and rest != "":
            parent, line = node, rest
            continue
        _DISPATCH.get(cmd.lower(), _dispatch_ignore)(node, rest, escape)
        assert root is not None
        return root


# --- the line scanner -----------------------------------------------------------------


def _trim_newline(s: str) -> str:
    return s.rstrip("\r\n")


def _is_comment(s: str) -> bool:
    return s.lstrip(GO_SPACE_CHARS).startswith("#")


def _trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    """(line without its continuation escape, True when the instruction ends here)."""
    end = len(line.rstrip(" \t"))
    if end == 0 or line[end - 1] != escape:
        return line, True
    if end >= 2 and line[end - 2] == escape:
        return line, True  # an escaped escape is a literal character
    return line[: end - 1], False


def _split_lines(text: str) -> list[str]:
    """Lines with their ``\n`` kept (heredoc bodies are stored byte for byte)."""
    lines = text.split("\n")
    last = lines.pop()
    lines = [line + "\n" for line in lines]
    if last:
        lines.append(last)
    return lines


def parse(source: str | bytes, *, file: str | None = None) -> ParseResult:
    """Parse a Dockerfile. Raises :class:`DockerfileError` with the line of the problem."""
    text = source.decode("utf-8", "surrogateescape") if isinstance(source, bytes) else source
    lines = _split_lines(text)
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    directives = DirectiveParser()
    nodes: list[Node] = []
    warnings: list[ParseWarning] = []
    comments: list[str] = []
    count = len(lines)
    i = 0
    current = 0  # 1-based number of the last line consumed
    while i < count:
        raw = _trim_newline(lines[i])
        i += 1
        current += 1
        stripped = raw.lstrip(GO_SPACE_CHARS)
        if stripped.startswith("#"):
            comment = stripped[1:].strip(GO_SPACE_CHARS)
            if comment:
                comments.append(comment)
            else:
                comments = []
        try:
            was_directive = directives.feed(stripped, current)
        except DirectiveError as exc:
            raise _error(str(exc), current, file) from None
        if was_directive and comments:
            comments.pop()
        if stripped.startswith("#"):
            stripped = ""
        start = current
        line, eol = _trim_continuation(stripped, directives.directives.escape)
        if eol and line == "":
            continue
        escape = directives.directives.escape
        segments = [line]
        empty_continuation = False
        while not eol and i < count:
            raw = _trim_newline(lines[i])
            i += 1
            current += 1
            if _is_comment(raw):
                continue
            if raw.strip(GO_SPACE_CHARS) == "":
                empty_continuation = True
                continue
            segment, eol = _trim_continuation(raw, escape)
            segments.append(segment)
        joined = "".join(segments)
        if empty_continuation:
            warnings.append(ParseWarning(f"Empty continuation line found in: {joined}", current))
        try:
            node = _node_from_line(joined, escape)
        except _ArgError as exc:
            raise _error(str(exc), start, file) from None
        node.comments = comments
        if node.can_contain_heredoc() and "<<" in joined:
            try:
                docs = heredocs_from_line(joined)
            except DockerfileError as exc:
                raise _error(exc.message, start, file) from None
            for doc in docs:
                body: list[str] = []
                terminated = False
                while i < count:
                    body_line = lines[i]
                    i += 1
                    current += 1
                    candidate = _trim_newline(body_line)
                    if doc.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == doc.name:
                        terminated = True
                        break
                    body.append(body_line)
                if not terminated:
                    raise _error("unterminated heredoc", start, file)
                node.heredocs.append(
                    Heredoc(
                        name=doc.name,
                        file_descriptor=doc.file_descriptor,
                        expand=doc.expand,
                        chomp=doc.chomp,
                        content="".join(body),
                    )
                )
        node.start_line, node.end_line = start, current
        if node.child is not None:
            node.child.start_line, node.child.end_line = start, current
        nodes.append(node)
        comments = []
    if not nodes:
        if text.strip(GO_SPACE_CHARS) == "":
            raise DockerfileError("the Dockerfile cannot be empty", file=file)
        raise _error("file with no instructions", current, file)
    return ParseResult(nodes=nodes, directives=directives.directives, warnings=warnings, file=file)


def parse_file(path: str) -> ParseResult:
    """Read and parse a Dockerfile from disk (``-`` is not special here)."""
    with open(path, "rb") as f:
        data = f.read()
    return parse(data, file=path)
