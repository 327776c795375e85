"""Typed instructions: :class:`~gantry.dockerfile.parser.Node` -> frozen dataclasses.

Each instruction's flags and arguments are checked here, with BuildKit's
messages (``unknown flag: --foo``, ``ENV names can not be blank``, ``COPY
requires at least two arguments, but only one was provided. Destination could
not be determined``...). Words are kept raw: ``$VAR`` expansion happens when the
build is planned (:mod:`gantry.dockerfile.shell`), so values that hold variables
are validated only as far as they can be without them.

Every instruction carries ``original`` (the joined source line) and its
``start_line``/``end_line``. Errors are :class:`~gantry.errors.DockerfileError`
``dockerfile parse error on line N: ...`` with ``file`` and ``line`` set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, TypedDict

from gantry.dockerfile.directives import Directives
from gantry.dockerfile.durations import DurationError, parse_duration
from gantry.dockerfile.flags import FlagError, FlagKind, FlagValue, parse_flags
from gantry.dockerfile.goquote import go_quote
from gantry.dockerfile.heredoc import Heredoc, parse_heredoc
from gantry.dockerfile.ignore import PatternMatcher
from gantry.dockerfile.mounts import Mount, MountError, parse_mount
from gantry.dockerfile.parser import INSTRUCTIONS, Node, ParseResult, ParseWarning, parse
from gantry.dockerfile.remote import is_git_source, is_http_source
from gantry.dockerfile.suggest import with_suggestion
from gantry.errors import DockerfileError, IgnorePatternError

__all__ = [
    "AddInstr",
    "ArgInstr",
    "ArgPair",
    "CmdInstr",
    "CopyInstr",
    "Dockerfile",
    "EntrypointInstr",
    "EnvInstr",
    "ExposeInstr",
    "FromInstr",
    "HealthcheckInstr",
    "Instruction",
    "LabelInstr",
    "MaintainerInstr",
    "OnbuildInstr",
    "RunInstr",
    "ShellInstr",
    "SourceContent",
    "StopsignalInstr",
    "UserInstr",
    "VolumeInstr",
    "WorkdirInstr",
    "parse_dockerfile",
    "parse_instruction",
    "parse_instructions",
]

NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_ONBUILD_PREFIX = re.compile(r"^[\t\n\v\f\r ]*ONBUILD[\t\n\v\f\r ]*", re.IGNORECASE)
_OCTAL = re.compile(r"^[0-7]+$")
_SYMBOLIC_CLAUSE = r"[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+"
_SYMBOLIC = re.compile(rf"^{_SYMBOLIC_CLAUSE}(?:,{_SYMBOLIC_CLAUSE})*$")
_CHECKSUM = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"^[0-9a-f]+$")
MINIMUM_INTERVAL_NS = 1_000_000  # 1ms, as BuildKit


class _Bad(Exception):
    """An instruction error; :func:`parse_instruction` adds file and line."""


# --- the instructions ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Instruction:
    """What every instruction has: its source text and line range."""

    keyword: ClassVar[str] = ""
    original: str
    start_line: int
    end_line: int


@dataclass(frozen=True, kw_only=True)
class _CommandLine(Instruction):
    """RUN/CMD/ENTRYPOINT: ``cmd`` is the exec-form list, or the one shell-form string."""

    cmd: tuple[str, ...]
    shell_form: bool

    @property
    def exec_form(self) -> bool:
        return not self.shell_form


@dataclass(frozen=True, kw_only=True)
class FromInstr(Instruction):
    keyword: ClassVar[str] = "FROM"
    image: str
    stage_name: str | None = None
    platform: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunInstr(_CommandLine):
    keyword: ClassVar[str] = "RUN"
    mounts: tuple[Mount, ...] = ()
    network: str = "default"
    security: str = "sandbox"
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CmdInstr(_CommandLine):
    keyword: ClassVar[str] = "CMD"


@dataclass(frozen=True, kw_only=True)
class EntrypointInstr(_CommandLine):
    keyword: ClassVar[str] = "ENTRYPOINT"


@dataclass(frozen=True, kw_only=True)
class SourceContent:
    """A heredoc used as a COPY/ADD source: a file named ``path`` holding ``data``."""

    path: str
    data: str
    expand: bool


@dataclass(frozen=True, kw_only=True)
class _Copying(Instruction):
    sources: tuple[str, ...]
    contents: tuple[SourceContent, ...]
    dest: str
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    excludes: tuple[str, ...] = ()
    json_form: bool = False


@dataclass(frozen=True, kw_only=True)
class CopyInstr(_Copying):
    keyword: ClassVar[str] = "COPY"
    from_: str | None = None
    parents: bool = False


@dataclass(frozen=True, kw_only=True)
class AddInstr(_Copying):
    keyword: ClassVar[str] = "ADD"
    keep_git_dir: bool = False
    checksum: str | None = None
    unpack: bool | None = None


@dataclass(frozen=True, kw_only=True)
class EnvInstr(Instruction):
    keyword: ClassVar[str] = "ENV"
    pairs: tuple[tuple[str, str], ...]
    legacy: bool = False  # ``ENV key value`` (no ``=``)


@dataclass(frozen=True, kw_only=True)
class LabelInstr(Instruction):
    keyword: ClassVar[str] = "LABEL"
    pairs: tuple[tuple[str, str], ...]
    legacy: bool = False


@dataclass(frozen=True, kw_only=True)
class ArgPair:
    name: str
    default: str | None = None


@dataclass(frozen=True, kw_only=True)
class ArgInstr(Instruction):
    keyword: ClassVar[str] = "ARG"
    args: tuple[ArgPair, ...]


@dataclass(frozen=True, kw_only=True)
class ExposeInstr(Instruction):
    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class VolumeInstr(Instruction):
    keyword: ClassVar[str] = "VOLUME"
    volumes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class UserInstr(Instruction):
    keyword: ClassVar[str] = "USER"
    user: str


@dataclass(frozen=True, kw_only=True)
class WorkdirInstr(Instruction):
    keyword: ClassVar[str] = "WORKDIR"
    path: str


@dataclass(frozen=True, kw_only=True)
class ShellInstr(Instruction):
    keyword: ClassVar[str] = "SHELL"
    shell: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class HealthcheckInstr(Instruction):
    """``test`` is ``("NONE",)``, ``("CMD", *argv)`` or ``("CMD-SHELL", line)``; durations in ns."""

    keyword: ClassVar[str] = "HEALTHCHECK"
    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, kw_only=True)
class StopsignalInstr(Instruction):
    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str


@dataclass(frozen=True, kw_only=True)
class MaintainerInstr(Instruction):
    keyword: ClassVar[str] = "MAINTAINER"
    maintainer: str


@dataclass(frozen=True, kw_only=True)
class OnbuildInstr(Instruction):
    """``expression`` is what goes into the image config's OnBuild list."""

    keyword: ClassVar[str] = "ONBUILD"
    expression: str
    trigger: Instruction


@dataclass
class Dockerfile:
    """A parsed and checked Dockerfile."""

    instructions: list[Instruction]
    directives: Directives
    warnings: list[ParseWarning] = field(default_factory=list)
    file: str | None = None

    @property
    def escape(self) -> str:
        return self.directives.escape


# --- argument helpers ----------------------------------------------------------------


def _flags(node: Node, spec: dict[str, FlagKind]) -> dict[str, FlagValue]:
    try:
        return parse_flags(node.flags, spec)
    except FlagError as exc:
        raise _Bad(str(exc)) from None


def _str(flags: dict[str, FlagValue], name: str) -> str | None:
    value = flags.get(name)
    return value if isinstance(value, str) else None


def _bool(flags: dict[str, FlagValue], name: str) -> bool:
    return flags.get(name) is True


def _strs(flags: dict[str, FlagValue], name: str) -> tuple[str, ...]:
    value = flags.get(name)
    return tuple(value) if isinstance(value, list) else ()


def _at_least_one(name: str) -> _Bad:
    return _Bad(f"{name} requires at least one argument")


def _exactly_one(name: str) -> _Bad:
    return _Bad(f"{name} requires exactly one argument")


def _command_line(node: Node) -> tuple[tuple[str, ...], bool]:
    """BuildKit's handleJSONArgs: exec form as is, shell form joined into one string."""
    if node.json:
        return tuple(node.args), False
    return ((" ".join(node.args),) if node.args else ()), True


def _kvps(node: Node, name: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    args = node.args
    if not args:
        raise _at_least_one(name)
    if len(args) % 3:
        raise _Bad(f"Bad input to {name}, too many arguments")
    pairs: list[tuple[str, str]] = []
    legacy = False
    for i in range(0, len(args), 3):
        key, value, sep = args[i : i + 3]
        if key == "":
            raise _Bad(f"{name} names can not be blank")
        legacy = legacy or sep == ""
        pairs.append((key, value))
    return tuple(pairs), legacy


def _check_chmod(value: str) -> None:
    if "$" in value:
        return
    if _OCTAL.match(value):
        if int(value, 8) >= 1 << 32:
            raise _Bad(f"invalid chmod parameter {value}: out of range")
        return
    if not _SYMBOLIC.match(value):
        raise _Bad(
            f"invalid chmod parameter {value}. it should be octal string like 0755 "
            "or symbolic like u+x"
        )


def _check_chown(value: str) -> None:
    if "$" in value:
        return
    user, _, group = value.partition(":")
    if user == "" or ":" in group:
        raise _Bad(f"invalid chown parameter {go_quote(value)}: expected user[:group]")


def _check_checksum(value: str) -> None:
    if "$" in value:
        return
    algo, sep, hexpart = value.partition(":")
    if not sep:
        raise _Bad(f"invalid checksum digest format: {value}")
    length = _CHECKSUM.get(algo)
    if length is None:
        raise _Bad(f"unsupported digest algorithm: {algo}")
    if len(hexpart) != length or not _HEX.match(hexpart):
        raise _Bad(f"invalid checksum digest length: {value}")


def _check_excludes(patterns: tuple[str, ...]) -> None:
    """Compile ``--exclude`` patterns as the copy will (``.dockerignore`` syntax)."""
    try:
        PatternMatcher([p for p in patterns if "$" not in p], kind="--exclude")
    except IgnorePatternError as exc:
        raise _Bad(str(exc)) from None


def _check_checksum_sources(sources: tuple[str, ...]) -> None:
    """``ADD --checksum`` needs exactly one source, fetched over HTTP(S) or Git."""
    if len(sources) != 1:
        raise _Bad("checksum can't be specified for multiple sources")
    src = sources[0]
    if "$" not in src and not (is_http_source(src) or is_git_source(src)):
        raise _Bad("checksum requires HTTP(S) or Git sources")


def _copying(node: Node, name: str) -> tuple[tuple[str, ...], tuple[SourceContent, ...], str]:
    if len(node.args) < 2:
        raise _Bad(
            f"{name} requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    *srcs, dest = node.args
    if parse_heredoc_quiet(dest) is not None:
        raise _Bad(f"{name} cannot accept a heredoc as a destination")
    by_name = {doc.name: doc for doc in node.heredocs}
    sources: list[str] = []
    contents: list[SourceContent] = []
    for src in srcs:
        doc = parse_heredoc_quiet(src) if not node.json else None
        if doc is None:
            sources.append(src)
            continue
        body = by_name.get(doc.name)
        data = body.data() if body is not None else ""
        contents.append(SourceContent(path=doc.name, data=data, expand=doc.expand))
    return tuple(sources), tuple(contents), dest


def parse_heredoc_quiet(word: str) -> Heredoc | None:
    """BuildKit's MustParseHeredoc: the heredoc a word opens, errors mean "not one"."""
    try:
        return parse_heredoc(word)
    except DockerfileError:
        return None


def _duration(flags: dict[str, FlagValue], name: str) -> int:
    text = _str(flags, name)
    if not text:
        return 0
    try:
        value = parse_duration(text)
    except DurationError as exc:
        raise _Bad(str(exc)) from None
    if value == 0:
        return 0
    if value < MINIMUM_INTERVAL_NS:
        raise _Bad(f"Interval {go_quote(name)} cannot be less than 1ms")
    return value


# --- one parser per instruction ---------------------------------------------------------


class _Loc(TypedDict):
    original: str
    start_line: int
    end_line: int


class _CopyCommon(_Loc):
    sources: tuple[str, ...]
    contents: tuple[SourceContent, ...]
    dest: str
    json_form: bool
    chown: str | None
    chmod: str | None
    link: bool
    excludes: tuple[str, ...]


def _base(node: Node) -> _Loc:
    return {"original": node.original, "start_line": node.start_line, "end_line": node.end_line}


def _from(node: Node) -> Instruction:
    args = node.args
    stage: str | None = None
    if len(args) == 3 and args[1].lower() == "as":
        stage = args[2].lower()
        if not _STAGE_NAME.match(stage):
            raise _Bad(
                f"invalid name for build stage: {go_quote(args[2])}, "
                "name can't start with a number or contain symbols"
            )
    elif len(args) != 1:
        raise _Bad("FROM requires either one or three arguments")
    flags = _flags(node, {"platform": FlagKind.STRING})
    return FromInstr(
        **_base(node), image=args[0], stage_name=stage, platform=_str(flags, "platform")
    )


def _run(node: Node) -> Instruction:
    flags = _flags(
        node,
        {
            "mount": FlagKind.STRINGS,
            "network": FlagKind.STRING,
            "security": FlagKind.STRING,
        },
    )
    mounts: list[Mount] = []
    for spec in _strs(flags, "mount"):
        try:
            mounts.append(parse_mount(spec))
        except MountError as exc:
            raise _Bad(str(exc)) from None
    network = _str(flags, "network") or "default"
    if "$" not in network and network not in NETWORK_MODES:
        raise _Bad(
            with_suggestion(f"invalid network mode {go_quote(network)}", network, NETWORK_MODES)
        )
    security = _str(flags, "security") or "sandbox"
    if "$" not in security and security not in SECURITY_MODES:
        raise _Bad(
            with_suggestion(f"security {go_quote(security)} is not valid", security, SECURITY_MODES)
        )
    cmd, shell_form = _command_line(node)
    return RunInstr(
        **_base(node),
        cmd=cmd,
        shell_form=shell_form,
        mounts=tuple(mounts),
        network=network,
        security=security,
        heredocs=tuple(node.heredocs),
    )


def _cmd(node: Node) -> Instruction:
    _flags(node, {})
    cmd, shell_form = _command_line(node)
    return CmdInstr(**_base(node), cmd=cmd, shell_form=shell_form)


def _entrypoint(node: Node) -> Instruction:
    _flags(node, {})
    cmd, shell_form = _command_line(node)
    return EntrypointInstr(**_base(node), cmd=cmd, shell_form=shell_form)


_COPY_FLAGS = {
    "from": FlagKind.STRING,
    "chown": FlagKind.STRING,
    "chmod": FlagKind.STRING,
    "link": FlagKind.BOOL,
    "parents": FlagKind.BOOL,
    "exclude": FlagKind.STRINGS,
}
_ADD_FLAGS = {
    "chown": FlagKind.STRING,
    "chmod": FlagKind.STRING,
    "link": FlagKind.BOOL,
    "keep-git-dir": FlagKind.BOOL,
    "checksum": FlagKind.STRING,
    "unpack": FlagKind.BOOL,
    "exclude": FlagKind.STRINGS,
}


def _copy_common(
    node: Node, name: str, spec: dict[str, FlagKind]
) -> tuple[_CopyCommon, dict[str, FlagValue]]:
    sources, contents, dest = _copying(node, name)
    flags = _flags(node, spec)
    chown, chmod = _str(flags, "chown"), _str(flags, "chmod")
    if chown:
        _check_chown(chown)
    if chmod:
        _check_chmod(chmod)
    common: _CopyCommon = {
        "original": node.original,
        "start_line": node.start_line,
        "end_line": node.end_line,
        "sources": sources,
        "contents": contents,
        "dest": dest,
        "json_form": node.json,
        "chown": chown or None,
        "chmod": chmod or None,
        "link": _bool(flags, "link"),
        "excludes": _strs(flags, "exclude"),
    }
    _check_excludes(common["excludes"])
    return common, flags


def _copy(node: Node) -> Instruction:
    common, flags = _copy_common(node, "COPY", _COPY_FLAGS)
    source_stage = _str(flags, "from")
    return CopyInstr(**common, from_=source_stage or None, parents=_bool(flags, "parents"))


def _add(node: Node) -> Instruction:
    common, flags = _copy_common(node, "ADD", _ADD_FLAGS)
    checksum = _str(flags, "checksum")
    if checksum:
        _check_checksum_sources(common["sources"])  # BuildKit checks the sources first
        _check_checksum(checksum)
    unpack = flags.get("unpack")
    return AddInstr(
        **common,
        keep_git_dir=_bool(flags, "keep-git-dir"),
        checksum=checksum or None,
        unpack=unpack if isinstance(unpack, bool) else None,
    )


def _env(node: Node) -> Instruction:
    _flags(node, {})
    pairs, legacy = _kvps(node, "ENV")
    return EnvInstr(**_base(node), pairs=pairs, legacy=legacy)


def _label(node: Node) -> Instruction:
    _flags(node, {})
    pairs, legacy = _kvps(node, "LABEL")
    return LabelInstr(**_base(node), pairs=pairs, legacy=legacy)


def _arg(node: Node) -> Instruction:
    if not node.args:
        raise _at_least_one("ARG")
    _flags(node, {})
    pairs: list[ArgPair] = []
    for word in node.args:
        if "=" in word:
            key, _, value = word.partition("=")
            if key == "":
                raise _Bad("ARG names can not be blank")
            pairs.append(ArgPair(name=key, default=value))
        else:
            pairs.append(ArgPair(name=word))
    return ArgInstr(**_base(node), args=tuple(pairs))


def _expose(node: Node) -> Instruction:
    if not node.args:
        raise _at_least_one("EXPOSE")
    _flags(node, {})
    return ExposeInstr(**_base(node), ports=tuple(node.args))


def _volume(node: Node) -> Instruction:
    if not node.args:
        raise _at_least_one("VOLUME")
    _flags(node, {})
    volumes: list[str] = []
    for v in node.args:
        v = v.strip()
        if v == "":
            raise _Bad("VOLUME specified can not be an empty string")
        volumes.append(v)
    return VolumeInstr(**_base(node), volumes=tuple(volumes))


def _one(name: str, node: Node) -> str:
    if len(node.args) != 1:
        raise _exactly_one(name)
    _flags(node, {})
    return node.args[0]


def _user(node: Node) -> Instruction:
    return UserInstr(**_base(node), user=_one("USER", node))


def _workdir(node: Node) -> Instruction:
    return WorkdirInstr(**_base(node), path=_one("WORKDIR", node))


def _stopsignal(node: Node) -> Instruction:
    return StopsignalInstr(**_base(node), signal=_one("STOPSIGNAL", node))


def _maintainer(node: Node) -> Instruction:
    return MaintainerInstr(**_base(node), maintainer=_one("MAINTAINER", node))


def _shell(node: Node) -> Instruction:
    _flags(node, {})
    if node.json and node.args:
        return ShellInstr(**_base(node), shell=tuple(node.args))
    if not node.args:
        raise _at_least_one("SHELL")
    raise _Bad("SHELL requires the arguments to be in JSON form")


def _healthcheck(node: Node) -> Instruction:
    if not node.args:
        raise _at_least_one("HEALTHCHECK")
    kind = node.args[0].upper()
    rest = node.args[1:]
    if kind == "NONE":
        if rest:
            raise _Bad("HEALTHCHECK NONE takes no arguments")
        _flags(node, {})
        return HealthcheckInstr(**_base(node), test=("NONE",))
    flags = _flags(
        node,
        {
            "interval": FlagKind.STRING,
            "timeout": FlagKind.STRING,
            "start-period": FlagKind.STRING,
            "start-interval": FlagKind.STRING,
            "retries": FlagKind.STRING,
        },
    )
    if kind != "CMD":
        raise _Bad(f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)")
    if node.json:
        test: tuple[str, ...] = ("CMD", *rest)
    else:
        test = ("CMD-SHELL", " ".join(rest)) if rest else ()
    if len(test) < 2:
        raise _Bad("Missing command after HEALTHCHECK CMD")
    retries = 0
    retries_text = _str(flags, "retries")
    if retries_text:
        try:
            if not re.fullmatch(r"[+-]?[0-9]+", retries_text):
                raise ValueError
            retries = int(retries_text)
        except ValueError:
            raise _Bad(
                f"strconv.ParseInt: parsing {go_quote(retries_text)}: invalid syntax"
            ) from None
        if not -(1 << 31) <= retries < 1 << 31:
            raise _Bad(f"strconv.ParseInt: parsing {go_quote(retries_text)}: value out of range")
        if retries < 0:
            raise _Bad(f"--retries cannot be negative ({retries})")
    return HealthcheckInstr(
        **_base(node),
        test=test,
        interval=_duration(flags, "interval"),
        timeout=_duration(flags, "timeout"),
        start_period=_duration(flags, "start-period"),
        start_interval=_duration(flags, "start-interval"),
        retries=retries,
    )


def _onbuild(node: Node) -> Instruction:
    child = node.child
    if child is None:
        raise _at_least_one("ONBUILD")
    _flags(node, {})
    trigger_name = child.keyword.upper()
    if trigger_name == "ONBUILD":
        raise _Bad("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger_name in ("MAINTAINER", "FROM"):
        raise _Bad(f"{trigger_name} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", node.original, count=1)
    for doc in node.heredocs:
        expression += "\n" + doc.content + doc.name
    inner = Node(
        keyword=child.keyword,
        args=child.args,
        flags=child.flags,
        original=child.original,
        start_line=node.start_line,
        end_line=node.end_line,
        json=child.json,
        heredocs=node.heredocs,
    )
    trigger = _dispatch(inner)
    return OnbuildInstr(**_base(node), expression=expression, trigger=trigger)


_PARSERS: dict[str, Callable[[Node], Instruction]] = {
    "add": _add,
    "arg": _arg,
    "cmd": _cmd,
    "copy": _copy,
    "entrypoint": _entrypoint,
    "env": _env,
    "expose": _expose,
    "from": _from,
    "healthcheck": _healthcheck,
    "label": _label,
    "maintainer": _maintainer,
    "onbuild": _onbuild,
    "run": _run,
    "shell": _shell,
    "stopsignal": _stopsignal,
    "user": _user,
    "volume": _volume,
    "workdir": _workdir,
}
assert set(_PARSERS) == set(INSTRUCTIONS)


def _dispatch(node: Node) -> Instruction:
    parser = _PARSERS.get(node.name)
    if parser is None:
        raise _Bad(
            with_suggestion(
                f"unknown instruction: {node.keyword}",
                node.keyword,
                [name.upper() for name in INSTRUCTIONS],
                case_sensitive=False,
            )
        )
    return parser(node)


def parse_instruction(node: Node, *, file: str | None = None) -> Instruction:
    """Check one node and build its typed instruction."""
    try:
        return _dispatch(node)
    except _Bad as exc:
        line = node.start_line
        raise DockerfileError(
            f"dockerfile parse error on line {line}: {exc}", file=file, line=line
        ) from None


def parse_instructions(result: ParseResult) -> list[Instruction]:
    """Every node of a parse result, typed; stops at the first error."""
    return [parse_instruction(node, file=result.file) for node in result.nodes]


def parse_dockerfile(source: str | bytes, *, file: str | None = None) -> Dockerfile:
    """Raw parse + typed check in one call."""
    result = parse(source, file=file)
    return Dockerfile(
        instructions=parse_instructions(result),
        directives=result.directives,
        warnings=result.warnings,
        file=file,
    )
