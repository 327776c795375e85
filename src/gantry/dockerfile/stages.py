"""The stage graph: which stages a Dockerfile has, what each needs, what ``--target`` keeps.

Rules, as BuildKit's Dockerfile frontend applies them:

- ``ARG`` before the first ``FROM`` declares meta args (:mod:`gantry.dockerfile.metaargs`):
  a ``--build-arg`` value wins over the default, defaults are expanded against the meta
  args before them, an ``ARG`` with neither stays unset (``${X-def}`` gives ``def``); the
  automatic platform args are there too (for the host unless ``builtin_args`` says
  otherwise); only ``ARG`` may come before the first ``FROM`` (``no build stage in
  current context``);
- each ``FROM`` opens a stage, numbered from 0, optionally named (``AS name``, compared
  case-insensitively); its image and ``--platform`` are expanded with the meta args; an
  image equal to the name of an *earlier* stage makes that stage the base;
- ``COPY --from=X`` and ``RUN --mount=...,from=X`` depend on stage X (by name, or by
  number: ``invalid stage index N``); a name that is no stage is an image;
- dependencies must not form a cycle (``circular dependency detected on stage: X``);
- ``--target`` picks a stage by name (``target stage "x" could not be found``), the last
  stage otherwise; :meth:`StageGraph.reachable` is what the build needs for it.

Also refused, where BuildKit only warns: two stages with the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gantry.dockerfile.goquote import go_quote
from gantry.dockerfile.instructions import (
    ArgInstr,
    CopyInstr,
    Dockerfile,
    FromInstr,
    Instruction,
    RunInstr,
)
from gantry.dockerfile.metaargs import GlobalScope, global_scope
from gantry.dockerfile.shell import Lexer
from gantry.dockerfile.suggest import with_suggestion
from gantry.errors import DockerfileError, ExpansionError

__all__ = ["Stage", "StageGraph", "build_stage_graph"]


@dataclass
class Stage:
    """One ``FROM`` and the instructions after it."""

    index: int
    name: str | None
    source: FromInstr
    image: str  # the expanded base name (an image reference, ``scratch`` or a stage name)
    platform: str | None
    base: Stage | None = None
    instructions: list[Instruction] = field(default_factory=list)
    #: stage index -> the first instruction that needs that stage (COPY --from, RUN --mount)
    deps: dict[int, Instruction] = field(default_factory=dict)
    #: images named by COPY --from / RUN --mount from= that are not stages
    images: list[str] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        return self.name or f"stage-{self.index}"

    @property
    def line(self) -> int:
        return self.source.start_line

    def __hash__(self) -> int:
        return hash(self.index)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stage) and other.index == self.index


@dataclass
class StageGraph:
    stages: list[Stage]
    target: Stage
    #: declared global ARG -> its value (None: declared without a default or --build-arg)
    meta_args: dict[str, str | None]
    meta_arg_instructions: list[ArgInstr]
    #: what FROM lines saw: the automatic platform args plus the global ARGs with a value
    scope: GlobalScope | None = None

    def find(self, ref: str) -> Stage | None:
        """A stage by name (case-insensitive) or by number, None for an image."""
        return _lookup(self.stages, ref)

    def reachable(self) -> list[Stage]:
        """The target and every stage it needs (base chain and dependencies), in file order."""
        seen: set[int] = set()
        todo = [self.target]
        while todo:
            stage = todo.pop()
            if stage.index in seen:
                continue
            seen.add(stage.index)
            if stage.base is not None:
                todo.append(stage.base)
            todo.extend(self.stages[i] for i in stage.deps)
        return [s for s in self.stages if s.index in seen]


def _fail(message: str, line: int | None, file: str | None) -> DockerfileError:
    return DockerfileError(message, file=file, line=line)


def _go_atoi(text: str) -> int | None:
    body = text[1:] if text[:1] in "+-" else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    return int(text)


def _lookup(
    stages: list[Stage], ref: str, by_name: Mapping[str, Stage] | None = None
) -> Stage | None:
    number = _go_atoi(ref)
    if number is not None:
        return stages[number] if 0 <= number < len(stages) else None
    if by_name is None:
        by_name = {s.name: s for s in stages if s.name is not None}
    return by_name.get(ref.lower())


def build_stage_graph(
    dockerfile: Dockerfile,
    *,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    builtin_args: Mapping[str, str] | None = None,
) -> StageGraph:
    """Group instructions into stages and link them. Raises :class:`DockerfileError`.

    ``builtin_args`` are the automatic platform args FROM lines see (``TARGETPLATFORM``...);
    when None they are :func:`~gantry.dockerfile.platforms.platform_args` for the host,
    with any ``--build-arg`` of the same name applied.
    """
    file = dockerfile.file
    meta_instrs: list[ArgInstr] = []
    body: list[Instruction] = []
    for instr in dockerfile.instructions:
        if not body and not isinstance(instr, FromInstr):
            if not isinstance(instr, ArgInstr):
                raise _fail("no build stage in current context", instr.start_line, file)
            meta_instrs.append(instr)
            continue
        body.append(instr)
    scope = global_scope(
        meta_instrs,
        build_args=build_args,
        builtin=builtin_args,
        escape=dockerfile.escape,
        file=file,
    )
    lexer = Lexer(dockerfile.escape)
    stages: list[Stage] = []
    by_name: dict[str, Stage] = {}
    for instr in body:
        if isinstance(instr, FromInstr):
            stage = _new_stage(instr, len(stages), by_name, lexer, scope.values, file)
            stages.append(stage)
            if stage.name is not None:
                by_name[stage.name] = stage
        else:
            stages[-1].instructions.append(instr)

    if not stages:
        raise _fail("no build stage in current context", None, file)

    for stage in stages:
        for instr in stage.instructions:
            for ref in _stage_refs(instr):
                found = _lookup(stages, ref, by_name)
                if found is None:
                    number = _go_atoi(ref)
                    if number is not None:
                        raise _fail(f"invalid stage index {number}", instr.start_line, file)
                    if ref not in stage.images:
                        stage.images.append(ref)
                    continue
                stage.deps.setdefault(found.index, instr)

    _check_cycles(stages, file)

    chosen = stages[-1]
    if target:
        found = _lookup_name(stages, target)
        if found is None:
            names = [s.name for s in stages if s.name]
            raise _fail(
                with_suggestion(
                    f"target stage {go_quote(target)} could not be found", target, names
                ),
                None,
                file,
            )
        chosen = found
    meta = {name: arg.value for name, arg in scope.declared.items()}
    return StageGraph(
        stages=stages,
        target=chosen,
        meta_args=meta,
        meta_arg_instructions=meta_instrs,
        scope=scope,
    )


def _lookup_name(stages: list[Stage], name: str) -> Stage | None:
    lowered = name.lower()
    return next((s for s in stages if s.name == lowered), None)


def _expand(lexer: Lexer, word: str, env: Mapping[str, str], line: int, file: str | None) -> str:
    try:
        return lexer.process_word(word, env)
    except ExpansionError as exc:
        raise _fail(str(exc), line, file) from None


def _new_stage(
    instr: FromInstr,
    index: int,
    by_name: Mapping[str, Stage],
    lexer: Lexer,
    env: Mapping[str, str],
    file: str | None,
) -> Stage:
    line = instr.start_line
    name = instr.stage_name
    if name is not None:
        other = by_name.get(name)
        if other is not None:
            raise DockerfileError(
                f"duplicate stage name {go_quote(name)}, stage names should be unique",
                file=file,
                line=line,
                hint=f"first defined on line {other.line}",
            )
    image = _expand(lexer, instr.image, env, line, file)
    if image == "":
        raise _fail(f"base name ({instr.image}) should not be blank", line, file)
    platform: str | None = None
    if instr.platform is not None:
        platform = _expand(lexer, instr.platform, env, line, file)
        if platform == "":
            raise _fail(f"empty platform value from expression {instr.platform}", line, file)
    base = by_name.get(image)
    return Stage(index=index, name=name, source=instr, image=image, platform=platform, base=base)


def _stage_refs(instr: Instruction) -> list[str]:
    refs: list[str] = []
    if isinstance(instr, CopyInstr) and instr.from_:
        refs.append(instr.from_)
    if isinstance(instr, RunInstr):
        refs.extend(m.from_ for m in instr.mounts if m.from_)
    return refs


def _check_cycles(stages: list[Stage], file: str | None) -> None:
    """Depth-first search over base and dependency edges; iterative (no recursion limit)."""
    state = [0] * len(stages)  # 0 new, 1 on the current path, 2 done
    for root in stages:
        if state[root.index]:
            continue
        stack: list[tuple[Stage, list[tuple[int, Instruction | None]]]] = [(root, _edges(root))]
        state[root.index] = 1
        while stack:
            stage, edges = stack[-1]
            if not edges:
                state[stage.index] = 2
                stack.pop()
                continue
            dep, instr = edges.pop()
            if state[dep] == 1:
                line = instr.start_line if instr is not None else stage.line
                raise _fail(
                    f"circular dependency detected on stage: {root.display_name}", line, file
                )
            if state[dep] == 0:
                state[dep] = 1
                stack.append((stages[dep], _edges(stages[dep])))


def _edges(stage: Stage) -> list[tuple[int, Instruction | None]]:
    edges: list[tuple[int, Instruction | None]] = [(i, ins) for i, ins in stage.deps.items()]
    if stage.base is not None:
        edges.append((stage.base.index, None))
    return edges
