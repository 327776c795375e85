"""Go ``text/template``, the part of it people type into ``--format``.

Written from the Go language documentation and the behaviour of ``docker``'s
``--format``: the same lexer rules (trim markers ``{{-`` / ``-}}``, comments,
raw strings, chained fields), the same control structures (``if``/``else if``,
``range`` with ``break``/``continue``, ``with``, ``define``/``template``/``block``,
variables), the same builtins (``and or not len index slice print printf println
eq ne lt le gt ge html js urlquery``) plus docker/cli's functions (``json split
join title lower upper pad truncate``), and error messages worded like Go's::

    template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type ...

Values are plain Python data. A ``Mapping`` is a Go map: ``.Key`` looks the key up
(a missing key prints ``<no value>``, or fails with ``missingkey="error"``) and
``range`` visits keys in sorted order. Any other object is a Go struct: ``.Field``
reads a public attribute (a callable one is a method and may take arguments) and
an unknown field is an error naming the object's ``go_type`` (or its class name).
``None`` is Go's "no value". Objects may define ``__json__()`` to choose what the
``json`` function encodes; dicts are encoded in their insertion order (callers that
model Go maps keep them sorted, as Go's encoder would).

Every failure raises :class:`gantry.errors.TemplateError` with Go's message.
"""

from __future__ import annotations

import dataclasses
import json
import math
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from gantry.errors import TemplateError

__all__ = [
    "Func",
    "FuncError",
    "Struct",
    "Template",
    "go_json",
    "go_quote",
    "go_sprint",
    "go_sprintf",
    "go_str",
    "go_type_name",
    "parse",
    "render",
]

MAX_DEPTH = 200  # nested {{template}} calls


# --------------------------------------------------------------------------- lexer

_EOF, _TEXT, _LEFT, _RIGHT, _SPACE, _FIELD, _VARIABLE, _IDENT = range(8)
_STRING, _RAWSTRING, _CHARCONST, _NUMBER, _BOOL, _DOT, _NIL = range(8, 15)
_PIPE, _DECLARE, _ASSIGN, _LPAREN, _RPAREN, _CHAR, _ERROR = range(15, 22)
# keywords
_KEYWORD = 100
_BLOCK, _BREAK, _CONTINUE, _DEFINE, _ELSE, _END, _IF, _RANGE, _TEMPLATE, _WITH = range(101, 111)

_KEYWORDS = {
    "block": _BLOCK,
    "break": _BREAK,
    "continue": _CONTINUE,
    "define": _DEFINE,
    "else": _ELSE,
    "end": _END,
    "if": _IF,
    "range": _RANGE,
    "nil": _NIL,
    "template": _TEMPLATE,
    "with": _WITH,
}

_SPACES = " \t\r\n"


@dataclass(slots=True)
class _Item:
    typ: int
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        if self.typ == _EOF:
            return "EOF"
        if self.typ == _ERROR:
            return self.val
        if self.typ > _KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or (ch.isdigit() and unicodedata.category(ch) == "Nd")


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.items: list[_Item] = []

    # helpers ---------------------------------------------------------------
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1  # also past EOF, so that backup() stays symmetric
        return ch

    def backup(self) -> None:
        self.pos -= 1

    def line_at(self, pos: int) -> int:
        return 1 + self.text.count("\n", 0, pos)

    def emit(self, typ: int) -> None:
        val = self.text[self.start : self.pos]
        self.items.append(_Item(typ, self.start, val, self.line_at(self.start)))
        self.start = self.pos

    def ignore(self) -> None:
        self.start = self.pos

    def error(self, msg: str) -> None:
        self.items.append(_Item(_ERROR, self.start, msg, self.line_at(self.start)))

    def at_right_delim(self) -> tuple[bool, bool]:
        t, p = self.text, self.pos
        if p + 1 < len(t) and t[p] in _SPACES and t[p + 1] == "-" and t.startswith("}}", p + 2):
            return True, True
        if t.startswith("}}", p):
            return True, False
        return False, False

    def at_terminator(self) -> bool:
        ch = self.peek()
        if ch == "" or ch in _SPACES or ch in ".,|:)(":
            return True
        return self.text.startswith("}}", self.pos)

    # states ------------------------------------------------------------------
    def run(self) -> list[_Item]:
        state: Callable[[], Any] | None = self.lex_text
        while state is not None:
            state = state()
        return self.items

    def lex_text(self) -> Callable[[], Any] | None:
        t = self.text
        x = t.find("{{", self.pos)
        if x < 0:
            self.pos = len(t)
            if self.pos > self.start:
                self.emit(_TEXT)
            self.emit(_EOF)
            return None
        end = x
        if t[x + 2 : x + 3] == "-" and t[x + 3 : x + 4] != "" and t[x + 3] in _SPACES:
            while end > self.start and t[end - 1] in _SPACES:
                end -= 1
        if end > self.start:
            self.pos = end
            self.emit(_TEXT)
        self.pos = x
        self.ignore()
        return self.lex_left_delim

    def lex_left_delim(self) -> Callable[[], Any] | None:
        t = self.text
        self.pos += 2
        trim = self.pos + 1 < len(t) and t[self.pos] == "-" and t[self.pos + 1] in _SPACES
        after = 2 if trim else 0
        if t.startswith("/*", self.pos + after):
            self.pos += after
            self.ignore()
            return self.lex_comment
        self.emit(_LEFT)
        self.pos += after
        self.ignore()
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self) -> Callable[[], Any] | None:
        t = self.text
        self.pos += 2
        x = t.find("*/", self.pos)
        if x < 0:
            self.error("unclosed comment")
            return None
        self.pos = x + 2
        delim, trim = self.at_right_delim()
        if not delim:
            self.error("comment ends before closing delimiter")
            return None
        if trim:
            self.pos += 2
        self.pos += 2
        if trim:
            self.skip_leading_space()
        self.ignore()
        return self.lex_text

    def skip_leading_space(self) -> None:
        t = self.text
        while self.pos < len(t) and t[self.pos] in _SPACES:
            self.pos += 1

    def lex_right_delim(self) -> Callable[[], Any] | None:
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += 2
        self.emit(_RIGHT)
        if trim:
            self.skip_leading_space()
            self.ignore()
        return self.lex_text

    def lex_inside_action(self) -> Callable[[], Any] | None:
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            self.error("unclosed left paren")
            return None
        ch = self.next()
        if ch == "":
            self.error("unclosed action")
            return None
        if ch in _SPACES:
            self.backup()
            return self.lex_space
        if ch == "=":
            self.emit(_ASSIGN)
        elif ch == ":":
            if self.next() != "=":
                self.error("expected :=")
                return None
            self.emit(_DECLARE)
        elif ch == "|":
            self.emit(_PIPE)
        elif ch == '"':
            return self.lex_quote
        elif ch == "`":
            return self.lex_raw_quote
        elif ch == "$":
            return self.lex_variable
        elif ch == "'":
            return self.lex_char
        elif ch == "." and not ("0" <= self.peek() <= "9" and self.peek() != ""):
            return self.lex_field
        elif ch in "+-." or "0" <= ch <= "9":
            self.backup()
            return self.lex_number
        elif _is_alnum(ch):
            self.backup()
            return self.lex_identifier
        elif ch == "(":
            self.paren_depth += 1
            self.emit(_LPAREN)
        elif ch == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.error("unexpected right paren")
                return None
            self.emit(_RPAREN)
        elif ord(ch) < 128 and ch.isprintable():
            self.emit(_CHAR)
        else:
            self.error(f"unrecognized character in action: {_rune_repr(ch)}")
            return None
        return self.lex_inside_action

    def lex_space(self) -> Callable[[], Any] | None:
        n = 0
        while self.peek() != "" and self.peek() in _SPACES:
            self.next()
            n += 1
        t, p = self.text, self.pos - 1
        if t[p] in _SPACES and p + 1 < len(t) and t[p + 1] == "-" and t.startswith("}}", p + 2):
            self.backup()
            if n == 1:
                return self.lex_inside_action
        self.emit(_SPACE)
        return self.lex_inside_action

    def lex_quote(self) -> Callable[[], Any] | None:
        return self._lex_escaped('"', _STRING, "unterminated quoted string")

    def _lex_escaped(self, close: str, typ: int, unterminated: str) -> Callable[[], Any] | None:
        """A "..." string or '.' character constant: backslash escapes, one line."""
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch not in ("", "\n"):
                    continue
            if ch in ("", "\n"):
                self.error(unterminated)
                return None
            if ch == close:
                break
        self.emit(typ)
        return self.lex_inside_action

    def lex_raw_quote(self) -> Callable[[], Any] | None:
        while True:
            ch = self.next()
            if ch == "":
                self.error("unterminated raw quoted string")
                return None
            if ch == "`":
                break
        self.emit(_RAWSTRING)
        return self.lex_inside_action

    def lex_char(self) -> Callable[[], Any] | None:
        return self._lex_escaped("'", _CHARCONST, "unterminated character constant")

    def lex_variable(self) -> Callable[[], Any] | None:
        if self.at_terminator():
            self.emit(_VARIABLE)
            return self.lex_inside_action
        return self.lex_field_or_variable(_VARIABLE)

    def lex_field(self) -> Callable[[], Any] | None:
        return self.lex_field_or_variable(_FIELD)

    def lex_field_or_variable(self, typ: int) -> Callable[[], Any] | None:
        if self.at_terminator():
            self.emit(_VARIABLE if typ == _VARIABLE else _DOT)
            return self.lex_inside_action
        while True:
            ch = self.next()
            if not (ch and _is_alnum(ch)):
                self.backup()
                break
        if not self.at_terminator():
            self.error(f"bad character {_rune_repr(ch)}")
            return None
        self.emit(typ)
        return self.lex_inside_action

    def lex_identifier(self) -> Callable[[], Any] | None:
        while True:
            ch = self.next()
            if ch and _is_alnum(ch):
                continue
            self.backup()
            word = self.text[self.start : self.pos]
            if not self.at_terminator():
                self.error(f"bad character {_rune_repr(ch)}")
                return None
            if word in _KEYWORDS:
                self.emit(_KEYWORDS[word])
            elif word in ("true", "false"):
                self.emit(_BOOL)
            else:
                self.emit(_IDENT)
            return self.lex_inside_action

    def lex_number(self) -> Callable[[], Any] | None:
        if not self.scan_number():
            self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
            return None
        self.emit(_NUMBER)
        return self.lex_inside_action

    def accept(self, valid: str) -> bool:
        ch = self.peek()
        if ch and ch in valid:
            self.pos += 1
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.accept(valid):
            pass

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if self.peek() and _is_alnum(self.peek()):
            self.pos += 1
            return False
        return True


def _rune_repr(ch: str) -> str:
    """Go's ``%#U``: ``U+0040 '@'``."""
    if not ch:
        return "U+FFFFFFFFFFFFFFFF"  # Go's eof rune (-1) printed as %#U
    code = f"U+{ord(ch):04X}"
    return f"{code} '{ch}'" if ch.isprintable() else code


# --------------------------------------------------------------------------- nodes


@dataclass(slots=True)
class _Node:
    pos: int

    def __str__(self) -> str:  # pragma: no cover - every node overrides it
        return ""


@dataclass(slots=True)
class _Text(_Node):
    text: str


@dataclass(slots=True)
class _Dot(_Node):
    def __str__(self) -> str:
        return "."


@dataclass(slots=True)
class _Nil(_Node):
    def __str__(self) -> str:
        return "nil"


@dataclass(slots=True)
class _Bool(_Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(slots=True)
class _Number(_Node):
    text: str
    is_int: bool
    is_float: bool
    int_value: int
    float_value: float

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class _String(_Node):
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(slots=True)
class _Field(_Node):
    ident: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


@dataclass(slots=True)
class _Variable(_Node):
    ident: list[str]

    def __str__(self) -> str:
        return ".".join(self.ident)


@dataclass(slots=True)
class _Identifier(_Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(slots=True)
class _Command(_Node):
    args: list[_Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, _Pipe) else str(a) for a in self.args)


@dataclass(slots=True)
class _Pipe(_Node):
    line: int
    decl: list[_Variable] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[_Command] = field(default_factory=list)

    def __str__(self) -> str:
        out = ""
        if self.decl:
            out = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return out + " | ".join(str(c) for c in self.cmds)


@dataclass(slots=True)
class _Chain(_Node):
    node: _Node
    fields: list[str]

    def __str__(self) -> str:
        base = f"({self.node})" if isinstance(self.node, _Pipe) else str(self.node)
        return base + "".join("." + f for f in self.fields)


@dataclass(slots=True)
class _List(_Node):
    nodes: list[_Node] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass(slots=True)
class _Action(_Node):
    line: int
    pipe: _Pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(slots=True)
class _Branch(_Node):
    kind: str  # "if", "range", "with"
    line: int
    pipe: _Pipe
    body: _List
    else_body: _List | None

    def __str__(self) -> str:
        out = "{{" + self.kind + " " + str(self.pipe) + "}}" + str(self.body)
        if self.else_body is not None:
            out += "{{else}}" + str(self.else_body)
        return out + "{{end}}"


@dataclass(slots=True)
class _TemplateCall(_Node):
    line: int
    name: str
    pipe: _Pipe | None

    def __str__(self) -> str:
        if self.pipe is None:
            return "{{template " + go_quote(self.name) + "}}"
        return "{{template " + go_quote(self.name) + " " + str(self.pipe) + "}}"


@dataclass(slots=True)
class _Break(_Node):
    def __str__(self) -> str:
        return "{{break}}"


@dataclass(slots=True)
class _Continue(_Node):
    def __str__(self) -> str:
        return "{{continue}}"


@dataclass(slots=True)
class _End(_Node):
    def __str__(self) -> str:
        return "{{end}}"


@dataclass(slots=True)
class _Else(_Node):
    line: int

    def __str__(self) -> str:
        return "{{else}}"


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, name: str, text: str, funcs: Mapping[str, object]) -> None:
        self.name = name
        self.text = text
        self.funcs = funcs
        self.items = _Lexer(text).run()
        self.i = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.defines: dict[str, _List] = {}
        self.last: _Item = self.items[0]

    def error(self, msg: str) -> NoReturn:
        raise TemplateError(f"template: {self.name}:{self.last.line}: {msg}")

    def next(self) -> _Item:
        item = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        self.touch(item)
        return item

    def touch(self, item: _Item) -> None:
        # Go reports a parse error at the line of the furthest token read so far
        if item.pos >= self.last.pos:
            self.last = item

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> _Item:
        item = self.items[min(self.i, len(self.items) - 1)]
        self.touch(item)
        return item

    def next_non_space(self) -> _Item:
        item = self.next()
        while item.typ == _SPACE:
            item = self.next()
        return item

    def peek_non_space(self) -> _Item:
        item = self.next_non_space()
        self.backup()
        return item

    def expect(self, typ: int, context: str) -> _Item:
        item = self.next_non_space()
        if item.typ != typ:
            self.unexpected(item, context)
        return item

    def unexpected(self, item: _Item, context: str) -> NoReturn:
        if item.typ == _ERROR:
            extra = ""
            if self.action_line and self.action_line != item.line:
                extra = f" in action started at {self.name}:{self.action_line}"
            self.error(f"{item}{extra}")
        self.error(f"unexpected {item} in {context}")

    # top level ---------------------------------------------------------------
    def parse(self) -> _List:
        root = _List(self.peek().pos)
        while self.peek().typ != _EOF:
            if self.peek().typ == _LEFT:
                save = self.i
                self.next()
                if self.next_non_space().typ == _DEFINE:
                    self.parse_definition()
                    continue
                self.i = save
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                self.error(f"unexpected {node}")
            root.nodes.append(node)
        return root

    def parse_definition(self) -> None:
        name_item = self.next_non_space()
        if name_item.typ not in (_STRING, _RAWSTRING):
            self.unexpected(name_item, "define clause")
        name = self.unquote(name_item)
        self.expect(_RIGHT, "define clause")
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            self.error(f"unexpected {end} in define clause")
        self.add_define(name, body)

    def add_define(self, name: str, body: _List) -> None:
        old = self.defines.get(name)
        if old is not None and old.nodes and not _is_empty_tree(old) and not _is_empty_tree(body):
            self.error(f"template: multiple definition of template {go_quote(name)}")
        if old is None or not _is_empty_tree(body):
            self.defines[name] = body

    def item_list(self) -> tuple[_List, _Node]:
        lst = _List(self.peek_non_space().pos)
        while self.peek_non_space().typ != _EOF:
            node = self.text_or_action()
            if isinstance(node, (_End, _Else)):
                return lst, node
            lst.nodes.append(node)
        self.error("unexpected EOF")

    def text_or_action(self) -> _Node:
        item = self.next_non_space()
        if item.typ == _TEXT:
            return _Text(item.pos, item.val)
        if item.typ == _LEFT:
            self.action_line = item.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(item, "input")

    def action(self) -> _Node:
        item = self.next_non_space()
        typ = item.typ
        if typ == _BLOCK:
            return self.block_control()
        if typ == _BREAK:
            return self.loop_control(item, _Break, "break")
        if typ == _CONTINUE:
            return self.loop_control(item, _Continue, "continue")
        if typ == _ELSE:
            return self.else_control()
        if typ == _END:
            tok = self.expect(_RIGHT, "end")
            return _End(tok.pos)
        if typ == _IF:
            return self.parse_control("if")
        if typ == _RANGE:
            return self.parse_control("range")
        if typ == _TEMPLATE:
            return self.template_control()
        if typ == _WITH:
            return self.parse_control("with")
        self.backup()
        tok = self.peek()
        return _Action(tok.pos, tok.line, self.pipeline("command", _RIGHT))

    def loop_control(self, item: _Item, cls: type[_Break | _Continue], name: str) -> _Node:
        tok = self.next_non_space()
        if tok.typ != _RIGHT:
            self.unexpected(tok, "{{" + name + "}}")
        if self.range_depth == 0:
            self.error("{{" + name + "}} outside {{range}}")
        return cls(item.pos)

    def else_control(self) -> _Node:
        peek = self.peek_non_space()
        if peek.typ in (_IF, _WITH):
            return _Else(peek.pos, peek.line)
        tok = self.expect(_RIGHT, "else")
        return _Else(tok.pos, tok.line)

    def parse_control(self, context: str) -> _Node:
        nvars = len(self.vars)
        try:
            pipe = self.pipeline(context, _RIGHT)
            if context == "range":
                self.range_depth += 1
            body, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_body: _List | None = None
            if isinstance(nxt, _Else):
                if context in ("if", "with") and self.peek().typ == (
                    _IF if context == "if" else _WITH
                ):
                    self.next()
                    else_body = _List(nxt.pos, [self.parse_control(context)])
                else:
                    else_body, nxt2 = self.item_list()
                    if not isinstance(nxt2, _End):
                        self.error(f"expected end; found {nxt2}")
            return _Branch(pipe.pos, context, pipe.line, pipe, body, else_body)
        finally:
            del self.vars[nvars:]

    def template_control(self) -> _Node:
        tok = self.next_non_space()
        if tok.typ not in (_STRING, _RAWSTRING):
            self.unexpected(tok, "template clause")
        name = self.unquote(tok)
        pipe: _Pipe | None = None
        if self.next_non_space().typ != _RIGHT:
            self.backup()
            pipe = self.pipeline("template clause", _RIGHT)
        return _TemplateCall(tok.pos, tok.line, name, pipe)

    def block_control(self) -> _Node:
        tok = self.next_non_space()
        if tok.typ not in (_STRING, _RAWSTRING):
            self.unexpected(tok, "block clause")
        name = self.unquote(tok)
        pipe = self.pipeline("block clause", _RIGHT)
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            self.error(f"unexpected {end} in block clause")
        self.add_define(name, body)
        return _TemplateCall(tok.pos, tok.line, name, pipe)

    def unquote(self, item: _Item) -> str:
        try:
            return _go_unquote(item.val)
        except ValueError as err:
            self.error(str(err))

    # pipelines ---------------------------------------------------------------
    def pipeline(self, context: str, end: int) -> _Pipe:
        tok = self.peek_non_space()
        pipe = _Pipe(tok.pos, tok.line)
        while True:  # declarations
            v = self.peek_non_space()
            if v.typ != _VARIABLE:
                break
            save = self.i
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.typ in (_ASSIGN, _DECLARE):
                pipe.is_assign = nxt.typ == _ASSIGN
                self.next_non_space()
                pipe.decl.append(_Variable(v.pos, [v.val]))
                self.vars.append(v.val)
                break
            if nxt.typ == _CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(_Variable(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (_VARIABLE, _RIGHT, _RPAREN):
                        continue
                    self.error("range can only initialize variables")
                self.error(f"too many declarations in {context}")
            # not a declaration: push back the variable (and the space after it)
            self.i = save
            break
        while True:
            tok = self.next_non_space()
            if tok.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in (
                _BOOL,
                _CHARCONST,
                _DOT,
                _FIELD,
                _IDENT,
                _NUMBER,
                _NIL,
                _RAWSTRING,
                _STRING,
                _VARIABLE,
                _LPAREN,
            ):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def check_pipeline(self, pipe: _Pipe, context: str) -> None:
        if not pipe.cmds:
            self.error(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], (_Bool, _Dot, _Nil, _Number, _String)):
                self.error(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> _Command:
        cmd = _Command(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ == _SPACE:
                continue
            if tok.typ in (_RIGHT, _RPAREN):
                self.backup()
            elif tok.typ == _PIPE:
                pass
            else:
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.error("empty command")
        return cmd

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == _FIELD:
            chain_pos = self.peek().pos
            fields: list[str] = []
            while self.peek().typ == _FIELD:
                fields.append(self.next().val[1:])
            if isinstance(node, _Field):
                return _Field(chain_pos, node.ident + fields)
            if isinstance(node, _Variable):
                return _Variable(chain_pos, node.ident + fields)
            if isinstance(node, (_Bool, _String, _Number, _Nil, _Dot)):
                self.error(f"unexpected . after term {go_quote(str(node))}")
            return _Chain(chain_pos, node, fields)
        return node

    def term(self) -> _Node | None:
        tok = self.next_non_space()
        typ = tok.typ
        if typ == _IDENT:
            if tok.val not in self.funcs:
                self.error(f"function {go_quote(tok.val)} not defined")
            return _Identifier(tok.pos, tok.val)
        if typ == _DOT:
            return _Dot(tok.pos)
        if typ == _NIL:
            return _Nil(tok.pos)
        if typ == _VARIABLE:
            if tok.val not in self.vars:
                self.error(f"undefined variable {go_quote(tok.val)}")
            return _Variable(tok.pos, [tok.val])
        if typ == _FIELD:
            return _Field(tok.pos, [tok.val[1:]])
        if typ == _BOOL:
            return _Bool(tok.pos, tok.val == "true")
        if typ in (_CHARCONST, _NUMBER):
            return self.number(tok)
        if typ == _LPAREN:
            return self.pipeline("parenthesized pipeline", _RPAREN)
        if typ in (_STRING, _RAWSTRING):
            return _String(tok.pos, tok.val, self.unquote(tok))
        self.backup()
        return None

    def number(self, tok: _Item) -> _Number:
        text = tok.val
        if tok.typ == _CHARCONST:
            try:
                ch = _go_unquote(text)
            except ValueError:
                self.error(f"malformed character constant: {text}")
            if len(ch) != 1:
                self.error(f"malformed character constant: {text}")
            return _Number(tok.pos, text, True, True, ord(ch), float(ord(ch)))
        if text.endswith("i"):
            self.error(f"complex numbers are not supported: {go_quote(text)}")
        int_value: int | None = _parse_go_int(text)
        float_value: float | None = None
        if int_value is not None:
            float_value = float(int_value)
        else:
            try:
                if "_" in text or text.lower().startswith(("0x", "-0x", "+0x")):
                    raise ValueError(text)
                float_value = float(text)
            except ValueError:
                self.error(f"illegal number syntax: {go_quote(text)}")
            if math.isinf(float_value):
                self.error(f"illegal number syntax: {go_quote(text)}")
            if float_value == int(float_value) and abs(float_value) < 2**63:
                int_value = int(float_value)
        return _Number(
            tok.pos,
            text,
            int_value is not None,
            True,
            int_value if int_value is not None else 0,
            float_value,
        )


def _is_empty_tree(lst: _List) -> bool:
    return all(isinstance(n, _Text) and not n.text.strip() for n in lst.nodes)


def _parse_go_int(text: str) -> int | None:
    t = text
    sign = 1
    if t[:1] in "+-":
        sign = -1 if t[0] == "-" else 1
        t = t[1:]
    if not t or "__" in t or t.endswith("_"):
        return None
    low = t.lower()
    try:
        if low.startswith("0x"):
            return sign * int(t[2:].replace("_", ""), 16)
        if low.startswith("0o"):
            return sign * int(t[2:].replace("_", ""), 8)
        if low.startswith("0b"):
            return sign * int(t[2:].replace("_", ""), 2)
        if not t.replace("_", "").isdigit():
            return None
        if t.startswith("_"):
            return None
        if len(t) > 1 and t[0] == "0":
            return sign * int(t[1:].replace("_", ""), 8)
        return sign * int(t.replace("_", ""))
    except ValueError:
        return None


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}


def _go_unquote(s: str) -> str:
    """strconv.Unquote for "...", `...` and '.' literals."""
    if len(s) < 2 or s[0] != s[-1] or s[0] not in "\"`'":
        raise ValueError("invalid syntax")
    quote, body = s[0], s[1:-1]
    if quote == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    out: list[str] = []
    i = 0
    pending = bytearray()

    def flush() -> None:
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
            pending.clear()

    while i < len(body):
        ch = body[i]
        if ch == quote:
            raise ValueError("invalid syntax")
        if ch != "\\":
            flush()
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise ValueError("invalid syntax")
        e = body[i]
        i += 1
        if e in _SIMPLE_ESCAPES:
            if (e == "'" and quote == '"') or (e == '"' and quote == "'"):
                raise ValueError("invalid syntax")
            flush()
            out.append(_SIMPLE_ESCAPES[e])
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i : i + n]
            if len(digits) != n or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            i += n
            v = int(digits, 16)
            if e == "x":
                pending.append(v)
            else:
                if v > 0x10FFFF or 0xD800 <= v < 0xE000:
                    raise ValueError("invalid syntax")
                flush()
                out.append(chr(v))
        elif e in "01234567":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or any(c not in "01234567" for c in digits):
                raise ValueError("invalid syntax")
            i += 2
            v = int(digits, 8)
            if v > 255:
                raise ValueError("invalid syntax")
            pending.append(v)
        else:
            raise ValueError("invalid syntax")
    flush()
    result = "".join(out)
    if quote == "'" and len(result) != 1:
        raise ValueError("invalid syntax")
    return result


# --------------------------------------------------------------------------- values


class Struct(dict[str, Any]):
    """A Go struct given as a dict: keys are its fields, in declaration order.

    Unlike a map, a missing field is an error (``can't evaluate field X in type T``);
    ``json`` keeps the field order. ``go_type`` names the type in messages. ``zero``
    gives the zero values of fields the dict leaves out (Go prints them; JSON, like an
    ``omitempty`` field, leaves them out).
    """

    go_type = "struct"
    zero: Mapping[str, Any] = {}

    def __init__(
        self,
        *args: Any,
        go_type: str | None = None,
        zero: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if go_type is not None:
            self.go_type = go_type
        if zero is not None:
            self.zero = zero


class NilSlice(list[Any]):
    """A nil Go slice: prints ``[]``, ``json`` gives ``null``."""


class NilMap(dict[Any, Any]):
    """A nil Go map: prints ``map[]``, ``json`` gives ``null``."""


class _NilPointer:
    """A nil Go pointer: prints ``<nil>`` (also at the top level), ``json`` gives ``null``."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __go_str__(self) -> str:
        return "<nil>"


NIL = _NilPointer()


class FuncError(Exception):
    """Raised by a template function; rendered as ``error calling NAME: MSG``."""


@dataclass(frozen=True, slots=True)
class Func:
    """A template function with Go-style parameter kinds.

    Kinds: ``string``, ``int``, ``bool``, ``float``, ``[]string``, ``any`` (Go's
    ``interface{}``: no value becomes None) and ``value`` (a ``reflect.Value``:
    anything, including no value). ``variadic`` is the kind of extra arguments.
    """

    fn: Callable[..., Any]
    params: tuple[str, ...] = ()
    variadic: str | None = None


_MISSING = object()  # "no final value" in a pipeline


class _Control(Exception):
    pass


class _BreakLoop(_Control):
    pass


class _ContinueLoop(_Control):
    pass


def go_type_name(v: Any) -> str:
    """The Go type a Python value stands for, as Go's error messages name it."""
    if v is None:
        return "interface {}"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, str) for x in v):
            return "[]string"
        return "[]interface {}"
    if isinstance(v, Mapping):
        name = getattr(v, "go_type", None)
        if isinstance(name, str):
            return name
        if v and all(isinstance(x, str) for x in v.values()):
            return "map[string]string"
        return "map[string]interface {}"
    name = getattr(v, "go_type", None)
    if isinstance(name, str):
        return name
    return "*" + type(v).__name__


def _truth(v: Any) -> bool:
    if v is None or v is NIL:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (str, list, tuple, Mapping)):
        return len(v) > 0
    return True


def _go_float(f: float) -> str:
    """fmt's %v for float64 (strconv 'g', shortest: exponent form below 1e-4 and from 1e6)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    digits, exp = _shortest_digits(f)
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        sign = "-" if f < 0 else ""
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return _fixed(f, digits, exp)


def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |f| and its decimal exponent."""
    r = repr(abs(f))
    mant, _, e = r.partition("e")
    exp = int(e) if e else 0
    intpart, _, frac = mant.partition(".")
    if frac == "0":
        frac = ""
    digits = (intpart + frac).lstrip("0")
    # exponent of the first significant digit
    if intpart.strip("0"):
        exp += len(intpart.lstrip("0")) - 1
    else:
        exp -= len(frac) - len(frac.lstrip("0")) + 1
    return digits.rstrip("0") or "0", exp


def _fixed(f: float, digits: str, exp: int) -> str:
    sign = "-" if f < 0 else ""
    if exp >= 0:
        if len(digits) <= exp + 1:
            return sign + digits + "0" * (exp + 1 - len(digits))
        return sign + digits[: exp + 1] + "." + digits[exp + 1 :]
    return sign + "0." + "0" * (-exp - 1) + digits


def go_str(v: Any, top: bool = True) -> str:
    """fmt.Sprint of one value (``<no value>`` for no value at the top level)."""
    if v is None:
        return "<no value>" if top else "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_str(x, False) for x in v) + "]"
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: _sort_key(kv[0]))
        return "map[" + " ".join(f"{go_str(k, False)}:{go_str(x, False)}" for k, x in items) + "]"
    custom = getattr(v, "__go_str__", None)
    if callable(custom):
        return str(custom())
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return (
            "{" + " ".join(go_str(getattr(v, f.name), False) for f in dataclasses.fields(v)) + "}"
        )
    return str(v)


def _sort_key(k: Any) -> tuple[int, Any]:
    if isinstance(k, bool):
        return (0, int(k))
    if isinstance(k, (int, float)):
        return (1, k)
    return (2, str(k))


def go_sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(a, False) if a is None else go_str(a))
    return "".join(out)


def go_sprintln(*args: Any) -> str:
    return " ".join(go_str(a, False) if a is None else go_str(a) for a in args) + "\n"


def go_quote(s: str) -> str:
    """strconv.Quote."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


# ----------------------------------------------------------------------------- json


def go_json(v: Any) -> str:
    """encoding/json as docker's ``json`` template function uses it (no HTML escaping)."""
    return "".join(_json_parts(v))


def _json_parts(v: Any) -> Iterator[str]:
    if v is None or v is NIL or isinstance(v, (NilSlice, NilMap)):
        yield "null"
    elif isinstance(v, bool):
        yield "true" if v else "false"
    elif isinstance(v, int):
        yield str(v)
    elif isinstance(v, float):
        yield _json_float(v)
    elif isinstance(v, str):
        yield _json_string(v)
    elif isinstance(v, (list, tuple)):
        yield "["
        for i, x in enumerate(v):
            if i:
                yield ","
            yield from _json_parts(x)
        yield "]"
    elif isinstance(v, Mapping):
        yield "{"
        for i, (k, x) in enumerate(v.items()):
            if i:
                yield ","
            yield _json_string(k if isinstance(k, str) else go_str(k))
            yield ":"
            yield from _json_parts(x)
        yield "}"
    else:
        custom = getattr(v, "__json__", None)
        if callable(custom):
            # a docker/cli row context: its MarshalJSON uses json.Marshal, which escapes
            # <, > and & (these only occur inside strings, so a plain replace is exact)
            text = "".join(_json_parts(custom()))
            yield text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            yield from _json_parts({f.name: getattr(v, f.name) for f in dataclasses.fields(v)})
        else:
            yield _json_string(str(v))


def _json_string(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    if "\u2028" in out or "\u2029" in out:
        out = out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return out


class _Unsupported(ValueError):
    pass


def _json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise _Unsupported(f"json: unsupported value: {_go_float(f)}")
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    digits, exp = _shortest_digits(f)
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        sign = "-" if f < 0 else ""
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp)}"
    return _fixed(f, digits, exp)


# --------------------------------------------------------------------------- printf


def go_sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf for the verbs people use: v s q d x X o b c U e E f F g G t T %."""
    out: list[str] = []
    argi = 0
    i = 0
    n = len(fmt)
    while i < n:
        ch = fmt[i]
        if ch != "%":
            j = fmt.find("%", i)
            j = n if j < 0 else j
            out.append(fmt[i:j])
            i = j
            continue
        i += 1
        flags = ""
        while i < n and fmt[i] in "+-# 0":
            flags += fmt[i]
            i += 1
        width: int | None = None
        if i < n and fmt[i] == "*":
            i += 1
            if argi < len(args) and isinstance(args[argi], int):
                width = args[argi]
                if width < 0:
                    flags += "-"
                    width = -width
            else:
                out.append("%!(BADWIDTH)")
            argi += 1
        else:
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > start:
                width = int(fmt[start:i])
        prec: int | None = None
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                i += 1
                if argi < len(args) and isinstance(args[argi], int) and args[argi] >= 0:
                    prec = args[argi]
                else:
                    out.append("%!(BADPREC)")
                argi += 1
            else:
                start = i
                while i < n and fmt[i].isdigit():
                    i += 1
                prec = int(fmt[start:i]) if i > start else 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_fmt_one(verb, flags, width, prec, arg))
    if argi < len(args):
        extra = ", ".join(
            f"{go_type_name(a) if a is not None else '<nil>'}={go_str(a, False)}"
            if a is not None
            else "<nil>"
            for a in args[argi:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _pad(s: str, flags: str, width: int | None, numeric: bool = False) -> str:
    if width is None or len(s) >= width:
        return s
    if "-" in flags:
        return s + " " * (width - len(s))
    if "0" in flags and numeric:
        sign = s[0] if s[:1] in "+-" else ""
        body = s[len(sign) :]
        return sign + "0" * (width - len(s)) + body
    return " " * (width - len(s)) + s


def _bad_verb(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(arg)}={go_str(arg, False)})"


def _fmt_int(verb: str, flags: str, prec: int | None, v: int) -> str | None:
    base = {"d": 10, "x": 16, "X": 16, "o": 8, "O": 8, "b": 2}.get(verb)
    if base is None:
        if verb == "c":
            return chr(v) if 0 <= v <= 0x10FFFF else "\ufffd"
        if verb == "q":
            return "'" + go_quote(chr(v))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
        if verb == "U":
            return f"U+{v:04X}"
        return None
    digits = format(abs(v), {10: "d", 16: "x", 8: "o", 2: "b"}[base])
    if verb == "X":
        digits = digits.upper()
    if prec is not None:
        digits = digits.rjust(prec, "0")
    if "#" in flags:
        digits = {"x": "0x", "X": "0X", "o": "0", "b": "0b"}.get(verb, "") + digits
    if verb == "O":
        digits = "0o" + digits
    sign = "-" if v < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
    return sign + digits


def _fmt_float(verb: str, flags: str, prec: int | None, v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        s = _go_float(v)
        return s
    if verb in "fF":
        s = f"{v:.{6 if prec is None else prec}f}"
    elif verb in "eE":
        s = f"{v:.{6 if prec is None else prec}e}"
        if verb == "E":
            s = s.upper()
    else:  # g G v
        s = _go_float(v) if prec is None else f"{v:.{prec}g}"
        if verb == "G":
            s = s.upper()
    if "+" in flags and not s.startswith("-"):
        s = "+" + s
    elif " " in flags and not s.startswith("-"):
        s = " " + s
    return s


def _fmt_one(verb: str, flags: str, width: int | None, prec: int | None, arg: Any) -> str:
    numeric = False
    s: str | None = None
    if verb == "T":
        s = go_type_name(arg) if arg is not None else "<nil>"
    elif verb == "v":
        if isinstance(arg, float):
            s = _fmt_float("g", flags, prec, arg)
            numeric = True
        elif isinstance(arg, int) and not isinstance(arg, bool):
            s = _fmt_int("d", flags, None, arg)
            numeric = True
        else:
            s = go_str(arg, False)
    elif arg is None:
        s = _bad_verb(verb, arg)
    elif isinstance(arg, bool):
        s = ("true" if arg else "false") if verb == "t" else _bad_verb(verb, arg)
    elif isinstance(arg, int):
        s = _fmt_int(verb, flags, prec, arg)
        numeric = True
        if s is None:
            s = _bad_verb(verb, arg)
            numeric = False
    elif isinstance(arg, float):
        if verb in "eEfFgG":
            s = _fmt_float(verb, flags, prec, arg)
            numeric = True
        else:
            s = _bad_verb(verb, arg)
    elif isinstance(arg, str):
        if verb == "s":
            s = arg if prec is None else arg[:prec]
        elif verb == "q":
            s = go_quote(arg if prec is None else arg[:prec])
        elif verb in "xX":
            data = arg.encode()
            s = data.hex() if verb == "x" else data.hex().upper()
        else:
            s = _bad_verb(verb, arg)
    elif verb == "s" or verb == "q":
        s = go_str(arg, False)
        if verb == "q" and isinstance(arg, (list, tuple)):
            s = "[" + " ".join(go_quote(go_str(x, False)) for x in arg) + "]"
    else:
        s = _bad_verb(verb, arg)
    return _pad(s or "", flags, width, numeric)


# ------------------------------------------------------------------------ builtins


def _fn_len(item: Any) -> int:
    if item is None:
        raise FuncError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, (list, tuple, Mapping)):
        return len(item)
    raise FuncError(f"len of type {go_type_name(item)}")


def _index_of(item: Any, idx: Any, cap: int) -> int:
    if isinstance(idx, bool) or not isinstance(idx, int):
        if idx is None:
            raise FuncError("cannot index slice/array with nil")
        raise FuncError(f"cannot index slice/array with type {go_type_name(idx)}")
    if idx < 0 or idx >= cap:
        raise FuncError(f"index out of range: {idx}")
    return idx


def _fn_index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("index of untyped nil")
    for idx in indexes:
        if item is None:
            raise FuncError("index of untyped nil")
        if isinstance(item, str):
            data = item.encode()
            item = data[_index_of(item, idx, len(data))]
        elif isinstance(item, (list, tuple)):
            item = item[_index_of(item, idx, len(item))]
        elif isinstance(item, Mapping):
            if idx is None:
                item = None
                continue
            item = item.get(idx)
        else:
            raise FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def _fn_slice(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) > 2:
            raise FuncError("cannot 3-index slice a string")
        data = item.encode()
        cap = len(data)
    elif isinstance(item, (list, tuple)):
        cap = len(item)
    else:
        raise FuncError(f"can't slice item of type {go_type_name(item)}")
    idx = [0, cap]
    for i, x in enumerate(indexes[:2]):
        if isinstance(x, bool) or not isinstance(x, int):
            raise FuncError(f"cannot index slice/array with type {go_type_name(x)}")
        if x < 0 or x > cap:
            raise FuncError(f"index out of range: {x}")
        idx[i] = x
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if isinstance(item, str):
        return item.encode()[idx[0] : idx[1]].decode("utf-8", errors="replace")
    return list(item[idx[0] : idx[1]])


def _kind(v: Any) -> str:
    if v is None:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def _fn_eq(a: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    ka = _kind(a)
    for b in others:
        kb = _kind(b)
        if ka != kb:
            if a is not None and b is not None:
                raise FuncError("incompatible types for comparison")
            continue
        if ka == "other":
            if isinstance(a, (list, tuple, Mapping)) or isinstance(b, (list, tuple, Mapping)):
                raise FuncError(f"non-comparable type {go_str(b, False)}: {go_type_name(b)}")
            if a is b or a == b:
                return True
            continue
        if ka == "invalid" or a == b:
            return True
    return False


def _fn_ne(a: Any, b: Any) -> bool:
    return not _fn_eq(a, b)


def _fn_lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka in ("invalid", "bool", "other"):
        raise FuncError("invalid type for comparison")
    if ka != kb:
        if kb in ("invalid", "bool", "other"):
            raise FuncError("invalid type for comparison")
        raise FuncError("incompatible types for comparison")
    return bool(a < b)


def _fn_le(a: Any, b: Any) -> bool:
    return _fn_lt(a, b) or _fn_eq(a, b)


def _fn_gt(a: Any, b: Any) -> bool:
    return not _fn_le(a, b)


def _fn_ge(a: Any, b: Any) -> bool:
    return not _fn_lt(a, b)


def _fn_not(a: Any) -> bool:
    return not _truth(a)


def _eval_args_text(args: Sequence[Any]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return go_sprint(*args)


def _fn_html(*args: Any) -> str:
    s = _eval_args_text(args)
    return (
        s.replace("&", "&amp;")
        .replace("'", "&#39;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("\x00", "\ufffd")
    )


def _fn_js(*args: Any) -> str:
    s = _eval_args_text(args)
    out: list[str] = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == '"':
            out.append('\\"')
        elif ch in "<>&=" or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _fn_urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_eval_args_text(args), safe="-_.~")


def _fn_printf(fmt: str, *args: Any) -> str:
    return go_sprintf(fmt, *args)


# docker/cli's functions


def _fn_json(v: Any) -> str:
    try:
        return go_json(v)
    except _Unsupported:
        return ""


def _fn_split(s: str, sep: str) -> list[str]:
    if sep == "":
        return list(s)
    return s.split(sep)


def _fn_join(items: list[str], sep: str) -> str:
    return sep.join(items)


def _fn_title(s: str) -> str:
    out: list[str] = []
    prev = " "
    for ch in s:
        out.append(ch.upper() if _title_sep(prev) else ch)
        prev = ch
    return "".join(out)


def _title_sep(ch: str) -> bool:
    if ch.isascii():
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or ch.isdigit():
        return False
    return ch.isspace()


def _fn_pad(s: str, prefix: int, suffix: int) -> str:
    if s == "":
        return s
    return " " * prefix + s + " " * suffix


def _fn_truncate(s: str, length: int) -> str:
    return s if len(s) < length else s[: max(length, 0)]


BUILTINS: dict[str, Func] = {
    "and": Func(lambda *a: a, ("value",), "value"),  # special-cased: short-circuit
    "or": Func(lambda *a: a, ("value",), "value"),  # special-cased: short-circuit
    "not": Func(_fn_not, ("value",)),
    "len": Func(_fn_len, ("value",)),
    "index": Func(_fn_index, ("value",), "value"),
    "slice": Func(_fn_slice, ("value",), "value"),
    "eq": Func(_fn_eq, ("value",), "value"),
    "ne": Func(_fn_ne, ("value", "value")),
    "lt": Func(_fn_lt, ("value", "value")),
    "le": Func(_fn_le, ("value", "value")),
    "gt": Func(_fn_gt, ("value", "value")),
    "ge": Func(_fn_ge, ("value", "value")),
    "print": Func(go_sprint, (), "any"),
    "printf": Func(_fn_printf, ("string",), "any"),
    "println": Func(go_sprintln, (), "any"),
    "html": Func(_fn_html, (), "any"),
    "js": Func(_fn_js, (), "any"),
    "urlquery": Func(_fn_urlquery, (), "any"),
}

DOCKER_FUNCS: dict[str, Func] = {
    "json": Func(_fn_json, ("any",)),
    "split": Func(_fn_split, ("string", "string")),
    "join": Func(_fn_join, ("[]string", "string")),
    "title": Func(_fn_title, ("string",)),
    "lower": Func(lambda s: s.lower(), ("string",)),
    "upper": Func(lambda s: s.upper(), ("string",)),
    "pad": Func(_fn_pad, ("string", "int", "int")),
    "truncate": Func(_fn_truncate, ("string", "int")),
}

# docker/cli's HeaderFunctions: applied when a ``table`` format renders its header
# row from the header map, so that ``{{upper .Name}}`` keeps the header text.
HEADER_FUNCS: dict[str, Func] = {
    "json": Func(lambda v: v, ("string",)),
    "split": Func(lambda v, _s: v, ("string", "string")),
    "join": Func(lambda v, _s: v, ("string", "string")),
    "title": Func(lambda v: v, ("string",)),
    "lower": Func(lambda v: v, ("string",)),
    "upper": Func(lambda v: v, ("string",)),
    "truncate": Func(lambda v, _n: v, ("string", "int")),
}


# ------------------------------------------------------------------------ executor


class _ExecError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _State:
    def __init__(
        self,
        tmpl: Template,
        name: str,
        funcs: Mapping[str, Func],
        out: list[str],
        depth: int = 0,
    ) -> None:
        self.tmpl = tmpl
        self.name = name
        self.funcs = funcs
        self.out = out
        self.node: _Node | None = None
        self.vars: list[list[Any]] = []
        self.depth = depth

    # errors ------------------------------------------------------------------
    def at(self, node: _Node) -> None:
        self.node = node

    def errorf(self, msg: str) -> NoReturn:
        name = self.name
        if self.node is None:
            raise TemplateError(f"template: {name}: {msg}")
        location, context = self.tmpl.error_context(self.node)
        raise TemplateError(
            f"template: {location}: executing {go_quote(name)} at <{context}>: {msg}"
        )

    # variables -----------------------------------------------------------------
    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value])

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for var in reversed(self.vars):
            if var[0] == name:
                var[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    def set_top_var(self, n: int, value: Any) -> None:
        self.vars[len(self.vars) - n][1] = value

    def var_value(self, name: str) -> Any:
        for var in reversed(self.vars):
            if var[0] == name:
                return var[1]
        self.errorf(f"undefined variable: {name}")

    # walking -------------------------------------------------------------------
    def walk(self, dot: Any, node: _Node) -> None:
        self.at(node)
        if isinstance(node, _Text):
            self.out.append(node.text)
        elif isinstance(node, _List):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, _Action):
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.at(node)
                self.out.append(go_str(val))
        elif isinstance(node, _Branch):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, _TemplateCall):
            self.walk_template(dot, node)
        elif isinstance(node, _Break):
            raise _BreakLoop()
        elif isinstance(node, _Continue):
            raise _ContinueLoop()
        else:  # pragma: no cover - the parser produces no other nodes
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: _Branch) -> None:
        mark = self.mark()
        try:
            val = self.eval_pipeline(dot, node.pipe)
            if _truth(val):
                self.walk(val if node.kind == "with" else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: _Branch) -> None:
        self.at(node)
        mark = self.mark()
        try:
            val = self.eval_pipeline(dot, node.pipe, declare=False)
            for var in node.pipe.decl:
                if node.pipe.is_assign:
                    self.var_value(var.ident[0])
                else:
                    self.push(var.ident[0], val)
            mark2 = self.mark()
            pairs: Iterator[tuple[Any, Any]]
            if isinstance(val, (list, tuple)):
                pairs = iter(enumerate(val))
            elif isinstance(val, Mapping):
                pairs = iter((k, val[k]) for k in sorted(val, key=_sort_key))
            elif isinstance(val, int) and not isinstance(val, bool):
                if len(node.pipe.decl) > 1:
                    self.errorf(f"can't use {val} to iterate over more than one variable")
                pairs = iter((i, i) for i in range(val))
            elif val is None:
                pairs = iter(())
            else:
                self.errorf(f"range can't iterate over {go_str(val)}")
            ran = False
            for key, elem in pairs:
                ran = True
                decl = node.pipe.decl
                if decl:
                    if node.pipe.is_assign:
                        if len(decl) > 1:
                            self.set_var(decl[0].ident[0], key)
                            self.set_var(decl[1].ident[0], elem)
                        else:
                            self.set_var(decl[0].ident[0], elem)
                    else:
                        self.set_top_var(1, elem)
                        if len(decl) > 1:
                            self.set_top_var(2, key)
                try:
                    self.walk(elem, node.body)
                except _ContinueLoop:
                    pass
                except _BreakLoop:
                    break
                finally:
                    self.pop(mark2)
            if not ran and node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(mark)

    def walk_template(self, dot: Any, node: _TemplateCall) -> None:
        self.at(node)
        body = self.tmpl.defines.get(node.name)
        if body is None:
            self.errorf(f"template {go_quote(node.name)} not defined")
        if self.depth >= MAX_DEPTH:
            self.errorf(f"exceeded maximum template depth ({MAX_DEPTH})")
        new_dot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else None
        sub = _State(self.tmpl, node.name, self.funcs, self.out, self.depth + 1)
        sub.push("$", new_dot)
        sub.walk(new_dot, body)

    # evaluation ----------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: _Pipe, declare: bool = True) -> Any:
        self.at(pipe)
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        if value is _MISSING:  # pragma: no cover - pipelines have commands
            value = None
        if declare:
            for var in pipe.decl:
                if pipe.is_assign:
                    self.set_var(var.ident[0], value)
                else:
                    self.push(var.ident[0], value)
        return value

    def not_a_function(self, args: Sequence[_Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: _Command, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, _Field):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, _Chain):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, _Identifier):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, _Pipe):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, _Variable):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, _Bool):
            return first.value
        if isinstance(first, _Dot):
            return dot
        if isinstance(first, _Nil):
            self.errorf("nil is not a command")
        if isinstance(first, _Number):
            return self.ideal_constant(first)
        if isinstance(first, _String):
            return first.text
        self.errorf(f"can't evaluate command {first}")  # pragma: no cover

    def ideal_constant(self, n: _Number) -> Any:
        self.at(n)
        low = n.text.lower()
        is_hex_int = low.lstrip("+-").startswith("0x") and "p" not in low
        if (
            n.is_float
            and not is_hex_int
            and not n.text.startswith("'")
            and any(c in n.text for c in ".eEpP")
        ):
            return n.float_value
        if n.is_int:
            if not -(2**63) <= n.int_value < 2**63:
                self.errorf(f"{n.text} overflows int")
            return n.int_value
        return n.float_value

    def eval_field_node(self, dot: Any, node: _Field, args: Sequence[_Node], final: Any) -> Any:
        self.at(node)
        return self.eval_field_chain(dot, dot, node, node.ident, args, final)

    def eval_chain_node(self, dot: Any, chain: _Chain, args: Sequence[_Node], final: Any) -> Any:
        self.at(chain)
        if not chain.fields:
            self.errorf("internal error: no fields in evalChainNode")
        if isinstance(chain.node, _Nil):
            self.errorf(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, "value", chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.fields, args, final)

    def eval_variable_node(
        self, dot: Any, var: _Variable, args: Sequence[_Node], final: Any
    ) -> Any:
        self.at(var)
        value = self.var_value(var.ident[0])
        if len(var.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.ident[1:], args, final)

    def eval_field_chain(
        self,
        dot: Any,
        receiver: Any,
        node: _Node,
        ident: Sequence[str],
        args: Sequence[_Node],
        final: Any,
    ) -> Any:
        for name in ident[:-1]:
            receiver = self.eval_field(dot, name, node, (), _MISSING, receiver)
        return self.eval_field(dot, ident[-1], node, args, final, receiver)

    def eval_field(
        self,
        dot: Any,
        name: str,
        node: _Node,
        args: Sequence[_Node],
        final: Any,
        receiver: Any,
    ) -> Any:
        if receiver is None:
            if self.tmpl.missingkey == "error":
                self.errorf(f"nil data; no entry for key {go_quote(name)}")
            return None
        has_args = len(args) > 1 or final is not _MISSING
        method = _method(receiver, name)
        if method is not None:
            return self.eval_call(dot, method, node, name, args, final)
        if isinstance(receiver, Mapping):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if isinstance(receiver, Struct):
                if name in receiver.zero:
                    return receiver.zero[name]
                self.errorf(f"can't evaluate field {name} in type {go_type_name(receiver)}")
            if self.tmpl.missingkey == "error":
                self.errorf(f"map has no entry for key {go_quote(name)}")
            return None
        if (
            not isinstance(receiver, (str, int, float, list, tuple))
            and not name.startswith("_")
            and name[:1].isupper()
            and hasattr(receiver, name)
        ):
            if has_args:
                self.errorf(f"{name} has arguments but cannot be invoked as function")
            return getattr(receiver, name)
        self.errorf(f"can't evaluate field {name} in type {go_type_name(receiver)}")

    def eval_function(
        self, dot: Any, node: _Identifier, cmd: _Node, args: Sequence[_Node], final: Any
    ) -> Any:
        self.at(node)
        fn = self.funcs.get(node.name)
        if fn is None:
            self.errorf(f"{go_quote(node.name)} is not a defined function")
        return self.eval_call(dot, fn, cmd, node.name, args, final)

    def eval_call(
        self,
        dot: Any,
        fn: Func,
        node: _Node,
        name: str,
        args: Sequence[_Node],
        final: Any,
    ) -> Any:
        call_args = list(args[1:]) if args else []
        num_in = len(call_args) + (0 if final is _MISSING else 1)
        nparams = len(fn.params)
        if fn.variadic is not None:
            if num_in < nparams:
                self.errorf(
                    f"wrong number of args for {name}: want at least {nparams} got {len(call_args)}"
                )
        elif num_in != nparams:
            self.errorf(f"wrong number of args for {name}: want {nparams} got {num_in}")

        if name in ("and", "or") and fn is self.funcs.get(name) and fn.fn is BUILTINS[name].fn:
            return self.eval_and_or(dot, name, call_args, final)

        argv: list[Any] = []
        for i, arg in enumerate(call_args):
            kind = fn.params[i] if i < nparams else fn.variadic
            assert kind is not None
            argv.append(self.eval_arg(dot, kind, arg))
        if final is not _MISSING:
            kind = fn.params[-1] if fn.variadic is None else fn.variadic
            if fn.variadic is not None and len(call_args) < nparams:
                kind = fn.params[len(call_args)]
            argv.append(self.validate(final, kind))
        try:
            return fn.fn(*argv)
        except FuncError as err:
            self.at(node)
            self.errorf(f"error calling {name}: {err}")

    def eval_and_or(self, dot: Any, name: str, args: Sequence[_Node], final: Any) -> Any:
        want = name == "or"
        val: Any = None
        nodes: list[Any] = list(args)
        if final is not _MISSING:
            nodes.append(("final", final))
        for n in nodes:
            val = n[1] if isinstance(n, tuple) else self.eval_arg(dot, "value", n)
            if _truth(val) == want:
                return val
        return val

    def validate(self, value: Any, kind: str) -> Any:
        if value is None:
            if kind in ("any", "value", "[]string"):
                return [] if kind == "[]string" else None
            self.errorf(f"invalid value; expected {kind}")
        ok = True
        if kind == "string":
            ok = isinstance(value, str)
        elif kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "float":
            ok = isinstance(value, float)
        elif kind == "[]string":
            if isinstance(value, (list, tuple)):
                return [x if isinstance(x, str) else go_str(x, False) for x in value]
            ok = False
        if not ok:
            self.errorf(f"wrong type for value; expected {kind}; got {go_type_name(value)}")
        return value

    def eval_arg(self, dot: Any, kind: str, n: _Node) -> Any:
        self.at(n)
        if isinstance(n, _Dot):
            return self.validate(dot, kind)
        if isinstance(n, _Nil):
            if kind in ("any", "value", "[]string"):
                return None
            self.errorf(f"cannot assign nil to {kind}")
        if isinstance(n, _Field):
            return self.validate(self.eval_field_node(dot, n, [n], _MISSING), kind)
        if isinstance(n, _Variable):
            return self.validate(self.eval_variable_node(dot, n, (), _MISSING), kind)
        if isinstance(n, _Pipe):
            return self.validate(self.eval_pipeline(dot, n), kind)
        if isinstance(n, _Identifier):
            fn = self.funcs.get(n.name)
            if fn is None:
                self.errorf(f"{go_quote(n.name)} is not a defined function")
            return self.validate(self.eval_call(dot, fn, n, n.name, (), _MISSING), kind)
        if isinstance(n, _Chain):
            return self.validate(self.eval_chain_node(dot, n, (), _MISSING), kind)
        if kind in ("any", "value"):
            if isinstance(n, _Bool):
                return n.value
            if isinstance(n, _String):
                return n.text
            if isinstance(n, _Number):
                return self.ideal_constant(n)
        if kind == "bool" and isinstance(n, _Bool):
            return n.value
        if kind == "string" and isinstance(n, _String):
            return n.text
        if kind == "int" and isinstance(n, _Number) and n.is_int:
            return n.int_value
        if kind == "float" and isinstance(n, _Number) and n.is_float:
            return n.float_value
        expected = {"bool": "bool", "string": "string", "int": "integer", "float": "float"}
        if kind in expected:
            self.errorf(f"expected {expected[kind]}; found {n}")
        self.errorf(f"can't handle {n} for arg of type {kind}")


def _method(receiver: Any, name: str) -> Func | None:
    """A public method of an object (or of a Mapping subclass) usable from a template."""
    if isinstance(receiver, (str, int, float, list, tuple, dict)) and type(receiver) in (
        str,
        int,
        float,
        bool,
        list,
        tuple,
        dict,
    ):
        return None
    if not name[:1].isupper():
        return None
    attr = getattr(type(receiver), name, None)
    if attr is None or isinstance(attr, property) or not callable(attr):
        return None
    bound = getattr(receiver, name)
    kinds = getattr(attr, "template_params", None)
    if kinds is None:
        import inspect

        try:
            sig = inspect.signature(bound)
        except (TypeError, ValueError):  # pragma: no cover - builtins without signature
            return Func(bound, (), "any")
        kinds = tuple("any" for p in sig.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD)
    return Func(bound, tuple(kinds))


# ------------------------------------------------------------------ fast path

# Most templates people type (and every default table of docker/cli) are text,
# fields and ``if FIELD``/``else``. Those compile to a few closures that do what the
# walker does for them, minus its bookkeeping: ~10x faster per row, which is what
# ``images`` over a thousand images needs. Anything else about a row (a method, a
# missing field, nil, a Mapping with methods) raises _Slow and that row is rendered
# again by the walker, so output and errors are always the walker's.


class _Slow(Exception):
    pass


_Emit = Callable[[Any, list[str]], None]
_Get = Callable[[Any], Any]


def _fast_get(name: str) -> _Get:
    def get(receiver: Any) -> Any:
        attr = getattr(type(receiver), name, _MISSING)
        if attr is _MISSING:
            if isinstance(receiver, Mapping):
                if name in receiver:
                    return receiver[name]
                raise _Slow
            try:
                return receiver.__dict__[name]
            except (AttributeError, KeyError):
                raise _Slow from None
        if isinstance(attr, property) and attr.fget is not None:
            return attr.fget(receiver)
        raise _Slow

    return get


def _fast_pipe(pipe: _Pipe) -> _Get | None:
    """A getter for a pipeline that is one field chain (``.A.B``), else None."""
    if pipe.decl or len(pipe.cmds) != 1 or len(pipe.cmds[0].args) != 1:
        return None
    node = pipe.cmds[0].args[0]
    if not isinstance(node, _Field) or not all(n[:1].isupper() for n in node.ident):
        return None
    getters = [_fast_get(n) for n in node.ident]
    if len(getters) == 1:
        return getters[0]

    def chain(dot: Any) -> Any:
        for g in getters:
            if dot is None:
                raise _Slow
            dot = g(dot)
        return dot

    return chain


def _fast_compile(node: _Node) -> _Emit | None:
    if isinstance(node, _Text):
        text = node.text

        def emit_text(dot: Any, out: list[str]) -> None:
            out.append(text)

        return emit_text
    if isinstance(node, _List):
        parts = [_fast_compile(n) for n in node.nodes]
        if any(p is None for p in parts):
            return None
        steps = [p for p in parts if p is not None]

        def emit_list(dot: Any, out: list[str]) -> None:
            for step in steps:
                step(dot, out)

        return emit_list
    if isinstance(node, _Action):
        get = _fast_pipe(node.pipe)
        if get is None:
            return None

        def emit_field(dot: Any, out: list[str]) -> None:
            v = get(dot)
            out.append(v if type(v) is str else go_str(v))

        return emit_field
    if isinstance(node, _Branch) and node.kind == "if":
        cond = _fast_pipe(node.pipe)
        body = _fast_compile(node.body)
        other = _fast_compile(node.else_body) if node.else_body is not None else None
        if cond is None or body is None or (node.else_body is not None and other is None):
            return None

        def emit_if(dot: Any, out: list[str]) -> None:
            if _truth(cond(dot)):
                body(dot, out)
            elif other is not None:
                other(dot, out)

        return emit_if
    return None


# --------------------------------------------------------------------------- public


class Template:
    """A parsed template. ``missingkey`` is Go's option: ``default``/``invalid``
    (print ``<no value>``), ``zero`` (same for these dynamic maps) or ``error``."""

    def __init__(
        self,
        text: str,
        *,
        name: str = "",
        funcs: Mapping[str, Func] | None = None,
        missingkey: str = "default",
    ) -> None:
        if missingkey not in ("default", "invalid", "zero", "error"):
            raise TemplateError(f"unrecognized option: missingkey={missingkey}")
        self.text = text
        self.name = name
        self.missingkey = missingkey
        self.funcs: dict[str, Func] = {**BUILTINS, **DOCKER_FUNCS, **(funcs or {})}
        parser = _Parser(name, text, self.funcs)
        self.root = parser.parse()
        self.defines = parser.defines
        self._fast = _fast_compile(self.root)
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def error_context(self, node: _Node) -> tuple[str, str]:
        """Go's ErrorContext: ``name:line:col`` (col = byte offset in the line) and node text."""
        pos = node.pos
        line = 0
        for i, start in enumerate(self._line_starts):
            if start <= pos:
                line = i
            else:
                break
        col = len(self.text[self._line_starts[line] : pos].encode())
        context = str(node)
        if len(context) > 20:
            context = context[:20] + "..."
        return f"{self.name}:{line + 1}:{col}", context

    def execute(self, data: Any, *, funcs: Mapping[str, Func] | None = None) -> str:
        """Render with ``data`` as dot; ``funcs`` replaces functions by name for this run."""
        out: list[str] = []
        self.execute_into(out, data, funcs=funcs)
        return "".join(out)

    def execute_into(
        self, out: list[str], data: Any, *, funcs: Mapping[str, Func] | None = None
    ) -> None:
        """Like :meth:`execute`, appending to ``out``: on error ``out`` keeps what was
        written so far, as Go's writer would."""
        if self._fast is not None:
            mark = len(out)
            try:
                self._fast(data, out)
                return
            except _Slow:
                del out[mark:]
        state = _State(self, self.name, {**self.funcs, **(funcs or {})}, out)
        state.push("$", data)
        try:
            state.walk(data, self.root)
        except RecursionError:
            raise TemplateError(
                f"template: {self.name}: exceeded maximum template depth ({MAX_DEPTH})"
            ) from None


def parse(text: str, **kwargs: Any) -> Template:
    """Parse ``text`` as a Go template (see :class:`Template`)."""
    return Template(text, **kwargs)


def render(text: str, data: Any, **kwargs: Any) -> str:
    """Parse and execute in one step."""
    return Template(text, **kwargs).execute(data)
