"""Shell word expansion for Dockerfile instructions, as BuildKit's shell lexer does it.

A Dockerfile word such as ``"${APP:-app}"-$VERSION.tar.gz`` is expanded against the
variables in scope (build args and ENV values) with the small subset of POSIX shell that
BuildKit implements:

* ``$v`` and ``${v}``; ``${v:-w}`` ``${v-w}`` ``${v:+w}`` ``${v+w}`` ``${v:?msg}`` ``${v?msg}``
  (with ``:`` an empty value counts as unset);
* pattern forms ``${v#p}`` ``${v##p}`` ``${v%p}`` ``${v%%p}`` ``${v/p/r}`` ``${v//p/r}``
  where ``*`` is any string and ``?`` any character (no bracket expressions);
* single quotes (literal), double quotes (only ``$`` and escapes of ``" $ \\`` are special)
  and the escape character (``\\`` or the one set by ``# escape=``).

:meth:`Lexer.process_word` gives the expanded string, :meth:`Lexer.process_words` splits
the result into words the way BuildKit's ``ProcessWords`` does (used by ``EXPOSE``,
``VOLUME``, ``COPY`` sources...), and :meth:`Lexer.process_word_with_matches` also
reports which variable names the word used and which of them were not set -- the builder
needs the first for cache keys, the linter the second (UndefinedVar).

Everything runs in time linear in the word (pattern operations are linear in the value
times the pattern): patterns are matched by a small Pike VM with the leftmost-first
semantics of Go's ``regexp`` instead of a backtracking engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gantry.dockerfile.goquote import go_quote
from gantry.errors import ExpansionError

__all__ = [
    "EXPANDING_INSTRUCTIONS",
    "ExpansionResult",
    "Lexer",
    "build_env",
    "expand_key_values",
    "go_quote",
    "go_trim_space",
]

#: Instructions whose arguments are word-expanded (BuildKit's list for the Dockerfile
#: frontend; ``ARG`` defaults are expanded too, against the values before the ``ARG``).
EXPANDING_INSTRUCTIONS = frozenset(
    {
        "ADD",
        "ARG",
        "COPY",
        "ENV",
        "EXPOSE",
        "FROM",
        "LABEL",
        "ONBUILD",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)

# Deeper nesting of ${...} than this is refused instead of exhausting the Python stack.
MAX_NESTING = 200

_SPECIAL_PARAMS = frozenset("@*#?-$!0")
#: Go's unicode.IsSpace: the Latin-1 spaces plus the Unicode White_Space characters
#: (Python's str.isspace would also take \x1c-\x1f).
GO_SPACE_CHARS = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
GO_SPACE = frozenset(GO_SPACE_CHARS)
_BOM = "\ufeff"
_BAD_RUNE = "\ufffd"  # what Go prints for the end-of-input rune


def go_is_space(ch: str) -> bool:
    """Go's ``unicode.IsSpace`` for one character."""
    return ch in GO_SPACE


def go_trim_space(s: str) -> str:
    """Go's ``strings.TrimSpace`` (Unicode white space, not Python's wider set)."""
    return s.strip(GO_SPACE_CHARS)


def build_env(pairs: Iterable[str]) -> dict[str, str]:
    """``["K=V", "K2"]`` -> ``{"K": "V", "K2": ""}``; a later key wins (BuildKit's BuildEnvs)."""
    env: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        env[key] = value if sep else ""
    return env


@dataclass(frozen=True)
class ExpansionResult:
    """The outcome of expanding one word.

    ``result`` is the expanded string, ``words`` its split into words, ``used`` the names
    that were looked up and found, ``unmatched`` the names looked up but not set.
    """

    result: str
    words: list[str] = field(default_factory=list)
    used: frozenset[str] = frozenset()
    unmatched: frozenset[str] = frozenset()


class _Failure(Exception):
    """An expansion error before it is wrapped with the word it came from."""


class Lexer:
    """BuildKit's shell lexer: ``Lexer(escape="\\\\")``.

    The options mirror BuildKit's ``Lex`` fields: ``raw_quotes`` keeps quote characters in
    the result, ``raw_escapes`` keeps escape characters, ``skip_process_quotes`` treats
    quotes as ordinary characters, and ``skip_unset_env`` leaves references to unset
    variables as written (``$NAME``, ``${NAME:-x}``) instead of expanding them.
    A ``Lexer`` holds no per-call state and may be shared.
    """

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_process_quotes: bool = False,
        skip_unset_env: bool = False,
    ) -> None:
        if len(escape) != 1:
            raise ValueError(f"escape must be one character, not {escape!r}")
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_process_quotes = skip_process_quotes
        self.skip_unset_env = skip_unset_env

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """Expand ``word``; spaces between words are kept."""
        return self.process_word_with_matches(word, env).result

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Expand ``word`` and split it on unquoted, unescaped whitespace."""
        return self.process_word_with_matches(word, env).words

    def process_word_with_matches(self, word: str, env: Mapping[str, str]) -> ExpansionResult:
        """Expand ``word`` and report the variables it used (see :class:`ExpansionResult`)."""
        state = _Word(self, word, env)
        try:
            result, words = state.process_stop_on("", self.raw_escapes)
        except _Failure as err:
            raise ExpansionError(f"failed to process {go_quote(word)}: {err}") from None
        return ExpansionResult(
            result=result,
            words=words,
            used=frozenset(state.matched),
            unmatched=frozenset(state.unmatched),
        )


def expand_key_values(
    lexer: Lexer, pairs: Sequence[tuple[str, str]], env: Mapping[str, str]
) -> list[tuple[str, str]]:
    """Expand the keys and values of one ``ENV``/``LABEL``/``ARG`` instruction.

    Every pair sees ``env`` as it was *before* the instruction, so ``ENV a=1 b=$a`` gives
    ``b`` the old value of ``a`` (as BuildKit and Docker do).
    """
    snapshot = dict(env)
    return [(lexer.process_word(k, snapshot), lexer.process_word(v, snapshot)) for k, v in pairs]


class _Words:
    """Collects the word split of ProcessWords while the result string is built."""

    __slots__ = ("in_word", "size", "word", "words")

    def __init__(self) -> None:
        self.word: list[str] = []
        self.size = 0  # characters in the current word (pieces may be empty strings)
        self.words: list[str] = []
        self.in_word = False

    def _flush(self) -> None:
        self.words.append("".join(self.word))
        self.word = []
        self.size = 0
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch in GO_SPACE:
            if self.in_word and self.size:
                self._flush()
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.word.append(ch)
        self.size += 1
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def add_raw_string(self, s: str) -> None:
        self.word.append(s)
        self.size += len(s)
        self.in_word = True

    def get(self) -> list[str]:
        if self.size:
            self._flush()
        return self.words


class _Word:
    """The state of expanding one word (BuildKit's shellWord)."""

    def __init__(self, lexer: Lexer, src: str, env: Mapping[str, str]) -> None:
        self.lexer = lexer
        self.escape = lexer.escape
        # Go's text/scanner skips a byte-order mark at the start of its input.
        self.src = src[1:] if src.startswith(_BOM) else src
        self.n = len(self.src)
        self.pos = 0
        self.env = env
        self.raw_escapes = lexer.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()
        self.depth = 0

    def peek(self) -> str:
        return self.src[self.pos] if self.pos < self.n else ""

    def next(self) -> str:
        if self.pos < self.n:
            ch = self.src[self.pos]
            self.pos += 1
            return ch
        return ""

    def get_env(self, name: str) -> tuple[str, bool]:
        value = self.env.get(name)
        if value is None:
            self.unmatched.add(name)
            return "", False
        self.matched.add(name)
        return value, True

    def process_stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """Read up to ``stop`` (consumed) or the end of the word when ``stop`` is ``""``."""
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        src, n, esc = self.src, self.n, self.escape
        quotes = not self.lexer.skip_process_quotes
        while self.pos < n:
            ch = src[self.pos]
            if stop and ch == stop:
                self.pos += 1
                return "".join(result), words.get()
            if ch == "$":
                tmp = self.process_dollar()
                result.append(tmp)
                words.add_string(tmp)
            elif quotes and ch == "'":
                tmp = self.process_single_quote()
                result.append(tmp)
                words.add_raw_string(tmp)
            elif quotes and ch == '"':
                tmp = self.process_double_quote()
                result.append(tmp)
                words.add_raw_string(tmp)
            else:
                self.pos += 1
                if ch == esc:
                    if self.raw_escapes:
                        words.add_raw_char(ch)
                        result.append(ch)
                    if self.pos >= n:
                        break  # a lone escape at the end of the word is dropped
                    ch = src[self.pos]
                    self.pos += 1
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise _Failure(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get()

    def process_single_quote(self) -> str:
        raw = self.lexer.raw_quotes
        result: list[str] = []
        if raw:
            result.append("'")
        self.pos += 1
        end = self.src.find("'", self.pos)
        if end < 0:
            raise _Failure("unexpected end of statement while looking for matching single-quote")
        result.append(self.src[self.pos : end])
        self.pos = end + 1
        if raw:
            result.append("'")
        return "".join(result)

    def process_double_quote(self) -> str:
        raw = self.lexer.raw_quotes
        esc = self.escape
        result: list[str] = []
        if raw:
            result.append('"')
        self.pos += 1
        while True:
            ch = self.peek()
            if ch == "":
                raise _Failure(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.pos += 1
                if raw:
                    result.append('"')
                return "".join(result)
            if ch == "$":
                result.append(self.process_dollar())
                continue
            self.pos += 1
            if ch == esc:
                if self.raw_escapes:
                    result.append(ch)
                nxt = self.peek()
                if nxt == "":
                    continue  # an escape at the very end is dropped; the quote error follows
                if nxt in ('"', "$", esc):
                    ch = nxt
                    self.pos += 1
            result.append(ch)

    def process_name(self) -> str:
        src, n = self.src, self.n
        start = self.pos
        if start < n:
            ch = src[start]
            if ch.isdecimal():
                end = start
                while end < n and src[end].isdecimal():
                    end += 1
                self.pos = end
                return src[start:end]
            if ch in _SPECIAL_PARAMS:
                self.pos += 1
                return ch
        end = start
        while end < n:
            ch = src[end]
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            end += 1
        self.pos = end
        return src[start:end]

    def process_dollar(self) -> str:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _Failure("syntax error: substitutions nested too deeply")
        try:
            return self._dollar()
        finally:
            self.depth -= 1

    def _dollar(self) -> str:
        self.pos += 1  # the $
        skip_unset = self.lexer.skip_unset_env
        if self.peek() != "{":
            name = self.process_name()
            if not name:
                return "$"
            value, found = self.get_env(name)
            if not found and skip_unset:
                return "$" + name
            return value

        self.pos += 1  # the {
        first = self.peek()
        if first == "":
            raise _Failure("syntax error: missing '}'")
        if first in "{}:":
            raise _Failure("syntax error: bad substitution")
        name = self.process_name()
        ch = self.next()
        if ch == "":
            # BuildKit reports "unsupported modifier (\ufffd)" here; say what is wrong.
            raise _Failure("syntax error: missing '}'")
        chs = ch
        null_is_unset = False

        if ch == "}":
            value, found = self.get_env(name)
            if not found and skip_unset:
                return "${" + name + "}"
            return value

        if ch == ":":
            null_is_unset = True
            ch = self.next()
            chs += ch or _BAD_RUNE
            # whatever follows ':' goes through the modifier handling below
        elif ch == "/":
            return self._substitute(name)
        elif ch not in "+-?#%":
            raise _Failure(f"unsupported modifier ({chs}) in substitution")

        try:
            word, _ = self.process_stop_on("}", ch in ("#", "%"))
        except _Failure:
            if self.pos >= self.n:
                raise _Failure("syntax error: missing '}'") from None
            raise

        value, found = self.get_env(name)
        if skip_unset and not found:
            return "${" + name + chs + word + "}"

        unset = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if unset else value
        if ch == "+":
            return "" if unset else word
        if ch == "?":
            if not found:
                raise _Failure(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _Failure(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("#", "%"):
            greedy = False
            if word.startswith(ch):
                greedy = True
                word = word[1:]
            if ch == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        raise _Failure(f"unsupported modifier ({chs}) in substitution")

    def _substitute(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.pos += 1
        try:
            pattern, _ = self.process_stop_on("/", True)
        except _Failure:
            if self.pos >= self.n:
                raise _Failure("syntax error: missing '/' in ${}") from None
            raise
        try:
            replacement, _ = self.process_stop_on("}", True)
        except _Failure:
            if self.pos >= self.n:
                raise _Failure("syntax error: missing '}'") from None
            raise

        value, found = self.get_env(name)
        if self.lexer.skip_unset_env and not found:
            slashes = "//" if replace_all else "/"
            return "${" + name + slashes + pattern + "/" + replacement + "}"

        try:
            prog = _ShellPattern(pattern, greedy=True)
        except ValueError as err:
            raise _Failure(f"invalid pattern ({pattern}) in substitution: {err}") from None
        if replace_all:
            return prog.replace_all(value, replacement)
        span = prog.search(value, 0, anchored=False)
        if span is None:
            return value
        return value[: span[0]] + replacement + value[span[1] :]


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    try:
        prog = _ShellPattern(pattern, greedy=greedy)
    except ValueError as err:
        raise _Failure(f"invalid pattern ({pattern}) in substitution: {err}") from None
    span = prog.search(value, 0, anchored=True)
    return value[span[1] :] if span is not None else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern but keep each ``\\x`` escape pair in order (``a\\*c`` -> ``c\\*a``)."""
    pieces: list[str] = []
    i, last = 0, len(pattern) - 1
    while i <= last:
        if pattern[i] == "\\" and i != last:
            pieces.append(pattern[i : i + 2])
            i += 2
        else:
            pieces.append(pattern[i])
            i += 1
    pieces.reverse()
    return "".join(pieces)


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # The shortest/longest rightmost match is the leftmost match of the reversed pattern
    # in the reversed value.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


# Atom kinds of a compiled shell pattern.
_LIT, _ANY, _STAR = 0, 1, 2


class _ShellPattern:
    """A shell pattern (``*``, ``?``, ``\\`` escapes) compiled for a leftmost-first Pike VM.

    The semantics are those of the Go regexp BuildKit builds from the pattern: ``*`` is
    ``.*`` (or ``.*?`` when not greedy), ``?`` is ``.``; neither matches a newline.
    """

    def __init__(self, pattern: str, *, greedy: bool) -> None:
        self.greedy = greedy
        atoms: list[tuple[int, str]] = []
        if pattern.startswith(_BOM):  # text/scanner drops a leading BOM here too
            pattern = pattern[1:]
        i, n = 0, len(pattern)
        while i < n:
            ch = pattern[i]
            i += 1
            if ch == "*":
                atoms.append((_STAR, ""))
            elif ch == "?":
                atoms.append((_ANY, ""))
            elif ch == "\\":
                nxt = pattern[i] if i < n else ""
                if nxt in ("}", "/") and nxt:
                    continue  # "\}" and "\/" are escapes of ${...} syntax, not of the pattern
                if nxt not in ("*", "?", "\\") or not nxt:
                    raise ValueError(f"invalid escape '\\{nxt or _BAD_RUNE}'")
                atoms.append((_LIT, nxt))
                i += 1
            else:
                atoms.append((_LIT, ch))
        self.atoms = atoms

    def _add(self, lst: list[tuple[int, int]], seen: set[int], pc: int, start: int) -> None:
        """Add the threads reachable from ``pc`` in priority order."""
        atoms, m, greedy = self.atoms, len(self.atoms), self.greedy
        stack: list[int] = [pc]  # >= 0: a pc to expand; < 0: the consume half of star -x-1
        while stack:
            p = stack.pop()
            if p < 0:
                lst.append((-p - 1, start))
                continue
            if p in seen:
                continue
            seen.add(p)
            if p < m and atoms[p][0] == _STAR:
                if greedy:
                    lst.append((p, start))
                    stack.append(p + 1)
                else:
                    stack.append(-p - 1)
                    stack.append(p + 1)
            else:
                lst.append((p, start))

    def search(self, s: str, start: int, *, anchored: bool) -> tuple[int, int] | None:
        """The leftmost-first match at or after ``start`` (only at ``start`` if anchored)."""
        atoms, m, n = self.atoms, len(self.atoms), len(s)
        clist: list[tuple[int, int]] = []
        cseen: set[int] = set()
        best: tuple[int, int] | None = None
        pos = start
        while True:
            if not clist and (best is not None or (anchored and pos != start)):
                break
            if best is None and (not anchored or pos == start):
                self._add(clist, cseen, 0, pos)
            c = s[pos] if pos < n else ""
            nlist: list[tuple[int, int]] = []
            nseen: set[int] = set()
            for pc, st in clist:
                if pc == m:
                    best = (st, pos)
                    break  # lower-priority threads are cut off
                if not c:
                    continue
                kind, lit = atoms[pc]
                if kind == _LIT:
                    if c == lit:
                        self._add(nlist, nseen, pc + 1, st)
                elif c != "\n":
                    self._add(nlist, nseen, pc if kind == _STAR else pc + 1, st)
            if not c:
                break
            clist, cseen = nlist, nseen
            pos += 1
        return best

    def replace_all(self, value: str, template: str) -> str:
        """Go's ``Regexp.ReplaceAllString``: no empty match right after a match."""
        out: list[str] = []
        last_end = 0
        search = 0
        n = len(value)
        while search <= n:
            span = self.search(value, search, anchored=False)
            if span is None:
                break
            a0, a1 = span
            out.append(value[last_end:a0])
            if a1 > last_end or a0 == 0:
                out.append(_expand_template(template, value[a0:a1]))
            last_end = a1
            width = 1 if search < n else 0
            if search + width > a1:
                search += width
            elif search + 1 > a1:
                search += 1
            else:
                search = a1
        out.append(value[last_end:])
        return "".join(out)


def _expand_template(template: str, match: str) -> str:
    """Go's ``Regexp.Expand`` for a pattern whose only group is the whole match ($0)."""
    if "$" not in template:
        return template
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j + 1
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        k = i
        brace = k < n and template[k] == "{"
        if brace:
            k += 1
        name_start = k
        while k < n and (template[k].isalpha() or template[k].isdecimal() or template[k] == "_"):
            k += 1
        name = template[name_start:k]
        if not name or (brace and (k >= n or template[k] != "}")):
            out.append("$")  # malformed: the $ is literal text
            continue
        if brace:
            k += 1
        i = k
        if name == "0":
            out.append(match)
        # any other name or number refers to a group that does not exist: empty
    return "".join(out)
