"""ARG and ENV scoping: which variables each instruction sees, and what it expands to.

The rules, as BuildKit's Dockerfile frontend applies them:

- ``ARG`` before the first ``FROM`` declares *global* (meta) args. They are in scope for
  ``FROM`` lines only (image and ``--platform``). A ``--build-arg`` value wins over the
  default; a default is expanded against the global args declared before it; an ``ARG``
  without a default and without a ``--build-arg`` is declared but *not set*.
- Inside a stage, a global arg is visible only once re-declared with ``ARG NAME`` (no
  default): it then takes the global value. ``ARG NAME=default`` in a stage uses the
  ``--build-arg`` value if one was given, else its own default (expanded against what the
  stage sees at that point).
- The automatic platform args (``BUILDPLATFORM``, ``BUILDOS``, ``BUILDARCH``,
  ``BUILDVARIANT``, ``BUILDOSVERSION``, ``TARGETPLATFORM``, ``TARGETOS``, ``TARGETARCH``,
  ``TARGETVARIANT``, ``TARGETOSVERSION``, ``TARGETSTAGE``) are global args that exist
  without a declaration; like any global they must be re-declared to be used in a stage.
- The predefined proxy args (``HTTP_PROXY``, ``https_proxy``... see :data:`PROXY_ARGS`)
  reach ``RUN`` through its environment when given with ``--build-arg``, without an
  ``ARG``; they stay out of the image history unless the Dockerfile declares them.
- ``ENV`` and ``ARG`` values both feed expansion; a later definition replaces an earlier
  one of the same name. ``ENV`` values also go into the image config, ``ARG`` values never.
- A stage built ``FROM`` another stage starts with that stage's variables and ARGs.

:class:`Resolver` walks a stage and yields one :class:`Step` per instruction: the
instruction with its words expanded where BuildKit expands them, the variables it saw,
the ones it used, the ones it used that were not set (the ``UndefinedVar`` check), and
the ARGs in scope (what a ``RUN`` gets in its environment, its cache key and its history
line ``RUN |2 A=1 B=2 cmd``: :func:`run_history`). :meth:`Resolver.unconsumed` lists the
``--build-arg`` names no ``ARG`` declared (Docker's "were not consumed" warning).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from gantry.dockerfile.instructions import (
    AddInstr,
    ArgInstr,
    ArgPair,
    CopyInstr,
    EnvInstr,
    ExposeInstr,
    Instruction,
    LabelInstr,
    RunInstr,
    StopsignalInstr,
    UserInstr,
    VolumeInstr,
    WorkdirInstr,
)
from gantry.dockerfile.metaargs import GlobalArg, GlobalScope, global_scope
from gantry.dockerfile.mounts import Mount, MountError, parse_mount
from gantry.dockerfile.platforms import PLATFORM_ARGS, Platform, host_platform, platform_args
from gantry.dockerfile.shell import ExpansionResult, Lexer
from gantry.dockerfile.stages import Stage
from gantry.errors import DockerfileError, ExpansionError

__all__ = [
    "DEFAULT_PATH",
    "NON_ENV_ARGS",
    "PLATFORM_ARGS",
    "PROXY_ARGS",
    "GlobalArg",
    "GlobalScope",
    "Platform",
    "Resolver",
    "Step",
    "global_scope",
    "host_platform",
    "platform_args",
    "run_history",
]

#: Proxy settings every RUN receives from ``--build-arg`` without an ``ARG``.
PROXY_ARGS = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)

#: ARGs BuildKit reads itself and never puts into a RUN environment.
NON_ENV_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})

#: The PATH BuildKit gives a Linux stage whose image sets none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# --- per-stage resolution ------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One instruction of a stage, seen with the variables in scope before it.

    ``expanded`` is the instruction with its words expanded where BuildKit expands them
    (ENV/LABEL keys and values, ADD/COPY sources, destination, ``--chown``/``--chmod``/
    ``--checksum`` and expanding heredocs, EXPOSE ports (split into words), VOLUME,
    USER, WORKDIR, STOPSIGNAL, ARG defaults (``default`` then holds the value the ARG
    takes, None when unset) and ``RUN --mount`` fields); other instructions are
    returned as written. ``env`` is what expansion saw (image ENV, ENV and ARG values),
    ``used`` the names it looked up and found, ``unmatched`` those it looked up that
    were neither set nor declared by an ARG. ``args`` are the ARGs in scope *after* the
    instruction with their values (None: declared, unset), in declaration order:
    every one with a value is in a RUN's environment, so all of them key its cache.
    """

    instruction: Instruction
    expanded: Instruction
    env: Mapping[str, str]
    used: frozenset[str]
    unmatched: frozenset[str]
    args: tuple[tuple[str, str | None], ...]
    stage: Stage

    @property
    def build_args(self) -> dict[str, str]:
        """The ARGs in scope that have a value and belong in a RUN environment."""
        return {k: v for k, v in self.args if v is not None and k not in NON_ENV_ARGS}

    def run_env(self, proxy_args: Mapping[str, str] | None = None) -> dict[str, str]:
        """A RUN's variables: ``env`` plus the proxy build args (which ARG/ENV override)."""
        out = {k: v for k, v in (proxy_args or {}).items() if k in PROXY_ARGS}
        out.update(self.env)
        return out


@dataclass
class _State:
    env: dict[str, str] = field(default_factory=dict)
    args: dict[str, str | None] = field(default_factory=dict)
    base_env_known: bool = True


def run_history(
    cmd: Sequence[str], args: Sequence[tuple[str, str | None]], env: Mapping[str, str]
) -> str:
    """The image history line of a RUN: ``RUN |2 A=1 B=x /bin/sh -c make``.

    ``cmd`` is the final argv (shell prepended for the shell form); ``args`` the ARGs
    in scope (:attr:`Step.args`), shown with their current value from ``env``.
    """
    shown: dict[str, str] = {}
    for name, value in args:
        if name in NON_ENV_ARGS:
            continue
        shown[name] = env.get(name, value if value is not None else "")
    parts = [f"|{len(shown)}", *(f"{k}={v}" for k, v in shown.items())] if shown else []
    return "RUN " + " ".join([*parts, *cmd])


class Resolver:
    """Walks stages in the scope rules above.

    ``base_env(stage)`` gives the ENV of the image a stage starts from (an external
    image; not called for ``scratch`` or a stage base); returning None means "unknown"
    and :meth:`base_env_known` reports it, so a linter can tell "unset" from "not
    known here". PATH is always set, as BuildKit sets it when an image does not.
    """

    def __init__(
        self,
        scope: GlobalScope,
        *,
        build_args: Mapping[str, str] | None = None,
        base_env: Callable[[Stage], Mapping[str, str] | None] | None = None,
        file: str | None = None,
    ) -> None:
        self.scope = scope
        self.build_args = dict(build_args or {})
        self.base_env = base_env
        self.file = file
        self.lexer = Lexer(scope.escape)
        self.raw_lexer = Lexer("\\", skip_process_quotes=True)
        self._final: dict[int, _State] = {}
        self._consumed: set[str] = {
            name for name, arg in scope.declared.items() if arg.from_build_arg
        }

    # -- public ------------------------------------------------------------------------

    def steps(self, stage: Stage) -> Iterator[Step]:
        """Resolve ``stage`` instruction by instruction (its base stage first, once)."""
        state = self._initial(stage)
        for instr in stage.instructions:
            step = self._step(stage, instr, state)
            yield step
        self._final[stage.index] = state

    def resolve(self, stage: Stage) -> list[Step]:
        return list(self.steps(stage))

    def base_env_known(self, stage: Stage) -> bool:
        return self._initial(stage).base_env_known

    def unconsumed(self) -> list[str]:
        """``--build-arg`` names no resolved ARG declared (proxies and platform args excepted)."""
        skip = PROXY_ARGS | set(PLATFORM_ARGS)
        return sorted(k for k in self.build_args if k not in self._consumed and k not in skip)

    # -- internals ---------------------------------------------------------------------

    def _initial(self, stage: Stage) -> _State:
        if stage.base is not None:
            base = stage.base
            if base.index not in self._final:
                for _ in self.steps(base):
                    pass
            final = self._final[base.index]
            return _State(dict(final.env), dict(final.args), final.base_env_known)
        env: dict[str, str] = {}
        known = True
        if stage.image != "scratch" and self.base_env is not None:
            got = self.base_env(stage)
            if got is None:
                known = False
            else:
                env.update(got)
        elif stage.image != "scratch":
            known = False
        env.setdefault("PATH", DEFAULT_PATH)
        return _State(env=env, base_env_known=known)

    def _word(self, word: str, env: Mapping[str, str], acc: _Acc) -> str:
        return acc.add(self._expand(word, env, acc.line))

    def _expand(self, word: str, env: Mapping[str, str], line: int) -> ExpansionResult:
        try:
            return self.lexer.process_word_with_matches(word, env)
        except ExpansionError as exc:
            raise DockerfileError(str(exc), file=self.file, line=line) from None

    def _step(self, stage: Stage, instr: Instruction, state: _State) -> Step:
        env = dict(state.env)
        acc = _Acc(instr.start_line)
        expanded: Instruction = instr
        if isinstance(instr, ArgInstr):
            expanded = self._arg(instr, state, acc)
        elif isinstance(instr, EnvInstr):
            pairs = tuple(
                (self._word(k, env, acc), self._word(v, env, acc)) for k, v in instr.pairs
            )
            expanded = dataclasses.replace(instr, pairs=pairs)
            for k, v in pairs:
                state.env[k] = v
        elif isinstance(instr, LabelInstr):
            pairs = tuple(
                (self._word(k, env, acc), self._word(v, env, acc)) for k, v in instr.pairs
            )
            expanded = dataclasses.replace(instr, pairs=pairs)
        elif isinstance(instr, (CopyInstr, AddInstr)):
            expanded = self._copying(instr, env, acc)
        elif isinstance(instr, ExposeInstr):
            ports: list[str] = []
            for p in instr.ports:
                ports.extend(self._words(p, env, acc))
            expanded = dataclasses.replace(instr, ports=tuple(ports))
        elif isinstance(instr, VolumeInstr):
            vols = tuple(self._word(v, env, acc) for v in instr.volumes)
            expanded = dataclasses.replace(instr, volumes=vols)
        elif isinstance(instr, UserInstr):
            expanded = dataclasses.replace(instr, user=self._word(instr.user, env, acc))
        elif isinstance(instr, WorkdirInstr):
            expanded = dataclasses.replace(instr, path=self._word(instr.path, env, acc))
        elif isinstance(instr, StopsignalInstr):
            expanded = dataclasses.replace(instr, signal=self._word(instr.signal, env, acc))
        elif isinstance(instr, RunInstr) and instr.mounts:
            mounts = tuple(self._mount(m, env, acc) for m in instr.mounts)
            expanded = dataclasses.replace(instr, mounts=mounts)
        declared = set(state.args)
        unmatched = frozenset(
            n for n in acc.unmatched if n not in declared and n not in NON_ENV_ARGS
        )
        return Step(
            instruction=instr,
            expanded=expanded,
            env=env,
            used=frozenset(acc.used),
            unmatched=unmatched,
            args=tuple(state.args.items()),
            stage=stage,
        )

    def _words(self, word: str, env: Mapping[str, str], acc: _Acc) -> list[str]:
        result = self._expand(word, env, acc.line)
        acc.add(result)
        return list(result.words)

    def _arg(self, instr: ArgInstr, state: _State, acc: _Acc) -> ArgInstr:
        pairs: list[ArgPair] = []
        for pair in instr.args:
            name = pair.name
            value: str | None = None
            if name in self.build_args:
                value = self.build_args[name]
                self._consumed.add(name)
            elif pair.default is not None:
                value = self._word(pair.default, state.env, acc)
            else:
                glob = self.scope.values.get(name)
                if glob is not None:
                    value = glob
            if value is not None and name not in NON_ENV_ARGS:
                state.env[name] = value
            state.args.pop(name, None)
            state.args[name] = value
            pairs.append(ArgPair(name=name, default=value))
        return dataclasses.replace(instr, args=tuple(pairs))

    def _copying(
        self, instr: CopyInstr | AddInstr, env: Mapping[str, str], acc: _Acc
    ) -> Instruction:
        sources = tuple(self._word(s, env, acc) for s in instr.sources)
        contents = tuple(
            dataclasses.replace(c, data=self._raw(c.data, env, acc)) if c.expand else c
            for c in instr.contents
        )
        changes: dict[str, object] = {
            "sources": sources,
            "contents": contents,
            "dest": self._word(instr.dest, env, acc),
            "chown": self._word(instr.chown, env, acc) if instr.chown else instr.chown,
            "chmod": self._word(instr.chmod, env, acc) if instr.chmod else instr.chmod,
        }
        if isinstance(instr, AddInstr) and instr.checksum:
            changes["checksum"] = self._word(instr.checksum, env, acc)
        return dataclasses.replace(instr, **changes)  # type: ignore[arg-type]  # fields checked by dataclasses at run time

    def _raw(self, data: str, env: Mapping[str, str], acc: _Acc) -> str:
        try:
            return acc.add(self.raw_lexer.process_word_with_matches(data, env))
        except ExpansionError as exc:
            raise DockerfileError(str(exc), file=self.file, line=acc.line) from None

    def _mount(self, mount: Mount, env: Mapping[str, str], acc: _Acc) -> Mount:
        if not mount.deferred:
            return mount
        try:
            return parse_mount(mount.spec, lambda word: self._word(word, env, acc))
        except MountError as exc:
            raise DockerfileError(
                f"dockerfile parse error on line {acc.line}: {exc}", file=self.file, line=acc.line
            ) from None


class _Acc:
    """Collects the names an instruction's expansions used and missed."""

    def __init__(self, line: int) -> None:
        self.line = line
        self.used: set[str] = set()
        self.unmatched: set[str] = set()

    def add(self, result: ExpansionResult) -> str:
        self.used |= result.used
        self.unmatched |= result.unmatched
        return result.result
