"""Global (meta) ARGs: the ``ARG`` instructions before the first ``FROM``.

They are in scope for ``FROM`` lines only (image and ``--platform``), together with the
automatic platform args. A ``--build-arg`` value wins over the default; a default is
expanded against the global args declared before it; an ``ARG`` without a default and
without a ``--build-arg`` is declared but *not set*, so ``${NAME-x}`` gives ``x``
(BuildKit's ``buildMetaArgs``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gantry.dockerfile.instructions import ArgInstr
from gantry.dockerfile.platforms import platform_args
from gantry.dockerfile.shell import ExpansionResult, Lexer
from gantry.errors import DockerfileError, ExpansionError

__all__ = ["GlobalArg", "GlobalScope", "global_scope"]


@dataclass(frozen=True)
class GlobalArg:
    """One ARG before the first FROM. ``value`` is None when declared but not set."""

    name: str
    default: str | None
    value: str | None
    line: int
    from_build_arg: bool = False


@dataclass
class GlobalScope:
    """What ``FROM`` lines see: the automatic args plus the global ARGs that have a value."""

    values: dict[str, str]
    declared: dict[str, GlobalArg]
    builtin: dict[str, str]
    escape: str = "\\"

    def expand(self, word: str) -> ExpansionResult:
        """Expand a FROM image or ``--platform`` word. Raises :class:`ExpansionError`."""
        return Lexer(self.escape).process_word_with_matches(word, self.values)

    def known(self) -> set[str]:
        """Names a FROM may use without an UndefinedArgInFrom warning."""
        return set(self.declared) | set(self.values)


def global_scope(
    meta_args: Sequence[ArgInstr],
    *,
    build_args: Mapping[str, str] | None = None,
    builtin: Mapping[str, str] | None = None,
    escape: str = "\\",
    file: str | None = None,
) -> GlobalScope:
    """Resolve the ARGs before the first FROM (BuildKit's ``buildMetaArgs``).

    ``builtin`` defaults to :func:`platform_args` for the host. Raises
    :class:`DockerfileError` when a default does not expand.
    """
    args = dict(build_args or {})
    auto = dict(builtin) if builtin is not None else platform_args(overrides=args)
    values = dict(auto)
    declared: dict[str, GlobalArg] = {}
    lexer = Lexer(escape)
    for instr in meta_args:
        for pair in instr.args:
            value: str | None
            if pair.name in args:
                value = args[pair.name]
            elif pair.default is not None:
                try:
                    value = lexer.process_word(pair.default, values)
                except ExpansionError as exc:
                    raise DockerfileError(str(exc), file=file, line=instr.start_line) from None
            else:
                value = None
            declared[pair.name] = GlobalArg(
                pair.name, pair.default, value, instr.start_line, pair.name in args
            )
            if value is not None:
                values[pair.name] = value
    return GlobalScope(values=values, declared=declared, builtin=auto, escape=escape)
