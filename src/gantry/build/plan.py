"""From a parsed Dockerfile to stages: global ARGs, names, dependencies, ``--target``.

A stage is a ``FROM`` and the instructions up to the next one. A stage depends on
the stage its ``FROM`` names, on every stage a ``COPY --from`` or ``RUN --mount
from=`` names (by name or index), and on nothing else; only the stages the
target reaches are built, as BuildKit does.
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Mapping
from dataclasses import dataclass, field

from gantry.dockerfile.instructions import (
    ArgInstr,
    CopyInstr,
    Dockerfile,
    FromInstr,
    Instruction,
    RunInstr,
)
from gantry.dockerfile.shell import Lexer
from gantry.errors import BuildError, DockerfileError


@dataclass
class Stage:
    index: int
    from_: FromInstr
    instructions: list[Instruction]
    name: str | None
    #: the FROM image after expanding global ARGs
    base: str = ""
    #: index of the stage this one is built FROM, if any
    base_stage: int | None = None
    deps: set[int] = field(default_factory=set)

    @property
    def display(self) -> str:
        return self.name or f"stage-{self.index}"


def host_arch() -> tuple[str, str]:
    machine = _platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )
    variant = "v7" if arch == "arm" else ""
    return arch, variant


def builtin_args() -> dict[str, str]:
    """BuildKit's automatic platform ARGs (for the host platform)."""
    arch, variant = host_arch()
    plat = f"linux/{arch}" + (f"/{variant}" if variant else "")
    out: dict[str, str] = {}
    for prefix in ("BUILD", "TARGET"):
        out[f"{prefix}PLATFORM"] = plat
        out[f"{prefix}OS"] = "linux"
        out[f"{prefix}ARCH"] = arch
        out[f"{prefix}VARIANT"] = variant
    return out


@dataclass
class Plan:
    stages: list[Stage]
    global_args: dict[str, str]
    target: int
    order: list[int]

    def stage_by_ref(self, ref: str, before: int) -> int | None:
        """The stage ``ref`` names (a name, or a number) among those before ``before``."""
        low = ref.lower()
        for s in self.stages[:before]:
            if s.name == low:
                return s.index
        if ref.isdigit():
            n = int(ref)
            if n < before:
                return n
        return None


def plan(
    df: Dockerfile,
    build_args: Mapping[str, str],
    target: str | None,
) -> Plan:
    lexer = Lexer(df.escape)
    global_args: dict[str, str] = dict(builtin_args())
    stages: list[Stage] = []
    for instr in df.instructions:
        if isinstance(instr, FromInstr):
            stages.append(Stage(len(stages), instr, [], instr.stage_name))
        elif not stages:
            if not isinstance(instr, ArgInstr):
                raise DockerfileError(
                    "no build stage in current context", file=df.file, line=instr.start_line
                )
            for a in instr.args:
                if a.name in build_args:
                    global_args[a.name] = build_args[a.name]
                elif a.default is not None:
                    global_args[a.name] = lexer.process_word(a.default, global_args)
                else:
                    global_args.setdefault(a.name, "")
        else:
            stages[-1].instructions.append(instr)
    if not stages:
        raise DockerfileError("the Dockerfile has no build stage", file=df.file)
    for s in stages:
        s.base = lexer.process_word(s.from_.image, global_args)
        if s.base == "":
            raise DockerfileError(
                "base name (" + s.from_.image + ") should not be blank",
                file=df.file,
                line=s.from_.start_line,
            )
    p = Plan(stages, global_args, len(stages) - 1, [])
    for s in stages:
        dep = p.stage_by_ref(s.base, s.index)
        if dep is not None and not s.base.isdigit():
            s.base_stage = dep
            s.deps.add(dep)
        for instr in s.instructions:
            refs: list[str] = []
            if isinstance(instr, CopyInstr) and instr.from_:
                refs.append(lexer.process_word(instr.from_, global_args))
            if isinstance(instr, RunInstr):
                refs += [m.from_ for m in instr.mounts if m.from_]
            for ref in refs:
                d = p.stage_by_ref(ref, s.index)
                if d is not None:
                    s.deps.add(d)
                elif p.stage_by_ref(ref, len(stages)) is not None:
                    raise BuildError(
                        f'cannot copy from stage "{ref}", it needs to be defined before '
                        f'current stage "{s.display}"'
                    )
    if target:
        low = target.lower()
        found = next((s.index for s in stages if s.name == low), None)
        if found is None:
            raise BuildError(f'target stage "{target}" could not be found')
        p.target = found
    # the stages the target needs, dependencies first
    order: list[int] = []
    seen: set[int] = set()

    def visit(i: int) -> None:
        if i in seen:
            return
        seen.add(i)
        for d in sorted(stages[i].deps):
            visit(d)
        order.append(i)

    visit(p.target)
    p.order = order
    return p
