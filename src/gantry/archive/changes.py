"""``--change`` for ``import``: Dockerfile instructions applied to an image config.

Docker accepts, for ``import -c`` and ``commit -c``, the instructions that only
change the config: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
STOPSIGNAL, USER, VOLUME, WORKDIR. Lines are read by gantry's Dockerfile parser and words
expanded with the image's environment as a build would. Anything else is
refused as Docker refuses it: ``RUN is not a valid change command``.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Sequence

from gantry.dockerfile.instructions import HealthcheckInstr, parse_instruction
from gantry.dockerfile.parser import Node, parse
from gantry.dockerfile.shell import Lexer
from gantry.errors import DockerfileError, ExpansionError, UsageError
from gantry.oci import ContainerConfig, Healthcheck

VALID = (
    "cmd",
    "entrypoint",
    "env",
    "expose",
    "healthcheck",
    "label",
    "onbuild",
    "stopsignal",
    "user",
    "volume",
    "workdir",
)
_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)


def apply_changes(config: ContainerConfig, changes: Sequence[str]) -> ContainerConfig:
    """``config`` with every change applied in order; raises UsageError."""
    if not changes:
        return config
    try:
        result = parse("\n".join(changes))
    except DockerfileError as err:
        raise UsageError(f"invalid --change: {err}") from None
    state = _State(config)
    for node in result.nodes:
        if node.name not in VALID:
            raise UsageError(f"{node.keyword.upper()} is not a valid change command")
        try:
            state.apply(node, result.escape)
        except ExpansionError as err:
            raise UsageError(f"invalid --change {node.original!r}: {err}") from None
    return state.finish()


class _State:
    def __init__(self, config: ContainerConfig) -> None:
        self.c = config
        self.env = dict(config.env_dict())
        self.cmd_set = False
        self.entrypoint_set = False

    def _word(self, lexer: Lexer, word: str) -> str:
        return lexer.process_word(word, self.env)

    def _command(self, node: Node) -> tuple[str, ...]:
        if node.json:
            return tuple(node.args)
        shell = self.c.shell or ("/bin/sh", "-c")
        return (*shell, node.args[0]) if node.args else ()

    def apply(self, node: Node, escape: str) -> None:
        lexer = Lexer(escape)
        name = node.name
        c = self.c
        if name == "cmd":
            self.c = dataclasses.replace(c, cmd=self._command(node))
            self.cmd_set = True
        elif name == "entrypoint":
            self.c = dataclasses.replace(c, entrypoint=self._command(node))
            self.entrypoint_set = True
        elif name in ("env", "label"):
            args = node.args
            if not args:
                raise UsageError(f"{name.upper()} requires at least one argument")
            pairs = [
                (self._word(lexer, args[i]), self._word(lexer, args[i + 1]))
                for i in range(0, len(args) - 2, 3)
            ]
            if name == "env":
                env = list(c.env)
                for key, value in pairs:
                    env = [e for e in env if e.partition("=")[0] != key]
                    env.append(f"{key}={value}")
                    self.env[key] = value
                self.c = dataclasses.replace(c, env=tuple(env))
            else:
                labels = dict(c.labels)
                labels.update(pairs)
                self.c = dataclasses.replace(c, labels=labels)
        elif name == "expose":
            ports = list(c.exposed_ports)
            for word in node.args:
                for port in _ports(self._word(lexer, word)):
                    if port not in ports:
                        ports.append(port)
            self.c = dataclasses.replace(c, exposed_ports=tuple(ports))
        elif name == "user":
            self.c = dataclasses.replace(c, user=self._word(lexer, _one(node)))
        elif name == "workdir":
            path = self._word(lexer, _one(node))
            if not path.startswith("/"):
                path = posixpath.join(c.working_dir or "/", path)
            self.c = dataclasses.replace(c, working_dir=posixpath.normpath(path))
        elif name == "volume":
            vols = list(c.volumes)
            for word in node.args:
                v = self._word(lexer, word)
                if not v:
                    raise UsageError("VOLUME specified can not be an empty string")
                if v not in vols:
                    vols.append(v)
            self.c = dataclasses.replace(c, volumes=tuple(vols))
        elif name == "healthcheck":
            try:
                instr = parse_instruction(node)
            except DockerfileError as err:
                raise UsageError(f"invalid --change: {err}") from None
            assert isinstance(instr, HealthcheckInstr)
            hc = Healthcheck(
                test=instr.test,
                interval=instr.interval,
                timeout=instr.timeout,
                start_period=instr.start_period,
                start_interval=instr.start_interval,
                retries=instr.retries,
            )
            self.c = dataclasses.replace(c, healthcheck=hc)
        elif name == "stopsignal":
            self.c = dataclasses.replace(c, stop_signal=self._word(lexer, _one(node)))
        elif name == "onbuild":
            child = node.child
            if child is None:
                raise UsageError("ONBUILD requires at least one argument")
            if child.name in ("onbuild", "from", "maintainer"):
                raise UsageError(f"{child.keyword.upper()} isn't allowed as an ONBUILD trigger")
            self.c = dataclasses.replace(c, on_build=(*c.on_build, child.original))

    def finish(self) -> ContainerConfig:
        if self.entrypoint_set and not self.cmd_set:
            # Docker: a new ENTRYPOINT drops the CMD inherited from before
            return dataclasses.replace(self.c, cmd=None)
        return self.c


def _one(node: Node) -> str:
    if len(node.args) != 1:
        raise UsageError(f"{node.keyword.upper()} requires exactly one argument")
    return node.args[0]


def _ports(spec: str) -> list[str]:
    """``80``, ``80/udp``, ``8000-8002/tcp`` -> ``["80/tcp"]``... as Docker's nat package."""
    m = _PORT.match(spec)
    if m is None:
        raise UsageError(f"invalid containerPort: {spec}")
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else start
    proto = (m.group(3) or "tcp").lower()
    if end < start or end > 65535:
        raise UsageError(f"invalid range specified for container port: {spec}")
    return [f"{p}/{proto}" for p in range(start, end + 1)]
