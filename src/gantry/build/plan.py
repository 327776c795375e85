"""What a build runs: the frontend's stage graph and ARG resolver, ordered for the solver.

The rules live in the frontend (:mod:`gantry.dockerfile.stages` for stages, names,
``--target`` and dependencies; :mod:`gantry.dockerfile.args` for ARG/ENV scoping and
word expansion). This module only adds what the solver needs on top:

- the order to build the stages the target reaches (dependencies first), and
- ``COPY --from`` values written with a global ARG (``--from=${BASE}``), which the
  graph records as image names: they are expanded with the meta args here and, when
  they name a stage, become dependencies like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gantry.dockerfile.args import Resolver, host_platform
from gantry.dockerfile.instructions import CopyInstr, Dockerfile
from gantry.dockerfile.stages import Stage, StageGraph, build_stage_graph
from gantry.errors import DockerfileError, ExpansionError

__all__ = ["Plan", "Stage", "host_arch", "plan"]


def host_arch() -> tuple[str, str]:
    """(architecture, variant) of this machine, as OCI platforms spell them."""
    p = host_platform()
    return p.architecture, p.variant


@dataclass
class Plan:
    graph: StageGraph
    resolver: Resolver
    #: stages the target needs, every one after the stages it uses
    order: list[Stage]
    #: stage index -> indexes of the stages it needs (base, COPY --from, RUN --mount from=)
    needs: dict[int, set[int]] = field(default_factory=dict)
    file: str | None = None

    @property
    def target(self) -> Stage:
        return self.graph.target

    @property
    def stages(self) -> list[Stage]:
        return self.graph.stages

    def expand_from(self, ref: str) -> str:
        """A ``--from`` value expanded with the meta args (as a FROM line sees them)."""
        if "$" not in ref or self.graph.scope is None:
            return ref
        try:
            return self.graph.scope.expand(ref).result
        except ExpansionError as exc:
            raise DockerfileError(str(exc), file=self.file) from None

    def find(self, ref: str) -> Stage | None:
        """The stage a ``--from``/``from=`` value names (after expansion), None for an image."""
        return self.graph.find(self.expand_from(ref))


def plan(
    df: Dockerfile,
    build_args: Mapping[str, str],
    target: str | None,
    base_env: Callable[[Stage], Mapping[str, str] | None] | None = None,
) -> Plan:
    """Plan ``df``; raises :class:`DockerfileError` as the frontend does."""
    graph = build_stage_graph(df, build_args=build_args, target=target)
    assert graph.scope is not None
    resolver = Resolver(graph.scope, build_args=build_args, base_env=base_env, file=df.file)
    p = Plan(graph, resolver, [], file=df.file)
    for stage in graph.stages:
        needs = set(stage.deps)
        if stage.base is not None:
            needs.add(stage.base.index)
        for instr in stage.instructions:
            if isinstance(instr, CopyInstr) and instr.from_ and "$" in instr.from_:
                found = p.find(instr.from_)
                if found is not None and found.index != stage.index:
                    needs.add(found.index)
        p.needs[stage.index] = needs
    seen: set[int] = set()
    order: list[Stage] = []
    # iterative depth-first post-order (the graph is acyclic: the frontend checked it)
    todo: list[tuple[int, bool]] = [(graph.target.index, False)]
    while todo:
        i, expanded = todo.pop()
        if expanded:
            order.append(graph.stages[i])
            continue
        if i in seen:
            continue
        seen.add(i)
        todo.append((i, True))
        for d in sorted(p.needs[i], reverse=True):
            if d not in seen:
                todo.append((d, False))
    p.order = order
    return p
