"""Dockerfile checks: BuildKit's build-check rules plus image best practices.

:func:`run_checks` is what ``gantry lint`` and ``gantry build --check`` run. It parses
the Dockerfile, reads the ``# check=`` directive (``skip=Rule1,Rule2`` or ``skip=all``,
``error=true``, ``experimental=Rule|all``; a ``BUILDKIT_DOCKERFILE_CHECK`` build arg or
the ``check`` argument replaces it, as in BuildKit) and returns a :class:`CheckReport`.

Rule names, messages and URLs are BuildKit's (frontend/dockerfile/linter), so a
``# check=skip=JSONArgsRecommended`` written for Docker works here unchanged. Rules that
need the pulled base image (InvalidBaseImagePlatform) are not run. Experimental rules
(CopyIgnoredFile, InvalidDefinitionDescription) run only when enabled with
``experimental=``. gantry's own rules (:data:`gantry.dockerfile.rules.practices.PRACTICE_RULES`)
are skipped the same way and can all be turned off with ``best_practices=False``.

Without a target every stage is checked (BuildKit's lint does the same); with one, only
the stages it needs. A Dockerfile that does not parse or plan (a syntax error, a duplicate
stage name, an unknown ``--from`` index...) does not raise: the error is kept in
:attr:`CheckReport.error` next to the findings made before it, as BuildKit's lint reports
its ``buildError``. Only a malformed ``# check=`` value raises
:class:`~gantry.errors.DockerfileError`.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gantry.dockerfile.args import (
    GlobalScope,
    Platform,
    Resolver,
    Step,
    global_scope,
    platform_args,
)
from gantry.dockerfile.context import find_dockerignore
from gantry.dockerfile.goquote import go_quote
from gantry.dockerfile.ignore import PatternMatcher, read_dockerignore
from gantry.dockerfile.instructions import (
    AddInstr,
    ArgInstr,
    CmdInstr,
    CopyInstr,
    Dockerfile,
    EntrypointInstr,
    EnvInstr,
    ExposeInstr,
    HealthcheckInstr,
    Instruction,
    LabelInstr,
    RunInstr,
    ShellInstr,
    UserInstr,
    WorkdirInstr,
    parse_instructions,
)
from gantry.dockerfile.parser import Node, ParseResult, parse
from gantry.dockerfile.remote import is_remote_source
from gantry.dockerfile.rules import practices
from gantry.dockerfile.stages import Stage, StageGraph, build_stage_graph
from gantry.dockerfile.suggest import closest
from gantry.errors import DockerfileError, ExpansionError, InvalidReference
from gantry.reference import parse as parse_reference

__all__ = [
    "RULES",
    "CheckConfig",
    "CheckReport",
    "Finding",
    "Rule",
    "format_json",
    "format_text",
    "run_checks",
]

_URL = "https://docs.docker.com/go/dockerfile/rule/"


@dataclass(frozen=True)
class Rule:
    """A check. ``url`` is empty for gantry's own rules."""

    name: str
    description: str
    fix: str
    url: str = ""
    experimental: bool = False
    buildkit: bool = True


def _bk(name: str, slug: str, description: str, fix: str, experimental: bool = False) -> Rule:
    return Rule(name, description, fix, _URL + slug + "/", experimental)


_BUILDKIT_RULES = (
    _bk(
        "StageNameCasing",
        "stage-name-casing",
        "Stage names should be lowercase",
        "write the stage name in lowercase",
    ),
    _bk(
        "FromAsCasing",
        "from-as-casing",
        "The 'as' keyword should match the case of the 'from' keyword",
        "write AS in the same case as FROM",
    ),
    _bk(
        "NoEmptyContinuation",
        "no-empty-continuation",
        "Empty continuation lines will become errors in a future release",
        "remove the empty line inside the continued instruction",
    ),
    _bk(
        "ConsistentInstructionCasing",
        "consistent-instruction-casing",
        "All commands within the Dockerfile should use the same casing (either upper or lower)",
        "write every instruction in the same case (uppercase is customary)",
    ),
    _bk(
        "DuplicateStageName",
        "duplicate-stage-name",
        "Stage names should be unique",
        "give each stage its own name",
    ),
    _bk(
        "ReservedStageName",
        "reserved-stage-name",
        "Reserved words should not be used as stage names",
        "rename the stage ('scratch' and 'context' are reserved)",
    ),
    _bk(
        "JSONArgsRecommended",
        "json-args-recommended",
        "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior "
        "related to OS signals",
        'use the exec form: CMD ["executable", "arg"]',
    ),
    _bk(
        "MaintainerDeprecated",
        "maintainer-deprecated",
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
        'use LABEL org.opencontainers.image.authors="..."',
    ),
    _bk(
        "UndefinedArgInFrom",
        "undefined-arg-in-from",
        "FROM command must use declared ARGs",
        "declare the ARG before the first FROM",
    ),
    _bk(
        "WorkdirRelativePath",
        "workdir-relative-path",
        "Relative workdir without an absolute workdir declared within the build can have "
        "unexpected results if the base image changes",
        "use an absolute path in the first WORKDIR",
    ),
    _bk(
        "UndefinedVar",
        "undefined-var",
        "Variables should be defined before their use",
        "define it with ARG or ENV before this instruction",
    ),
    _bk(
        "MultipleInstructionsDisallowed",
        "multiple-instructions-disallowed",
        "Multiple instructions of the same type should not be used in the same stage",
        "keep only the last one: the earlier one has no effect",
    ),
    _bk(
        "LegacyKeyValueFormat",
        "legacy-key-value-format",
        "Legacy key/value format with whitespace separator should not be used",
        "write key=value",
    ),
    _bk(
        "RedundantTargetPlatform",
        "redundant-target-platform",
        "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the "
        "default behavior",
        "drop --platform=$TARGETPLATFORM",
    ),
    _bk(
        "SecretsUsedInArgOrEnv",
        "secrets-used-in-arg-or-env",
        "Sensitive data should not be used in the ARG or ENV commands",
        "pass secrets with RUN --mount=type=secret instead",
    ),
    _bk(
        "InvalidDefaultArgInFrom",
        "invalid-default-arg-in-from",
        "Default value for global ARG results in an empty or invalid base image name",
        "give the global ARG a default that names a valid image",
    ),
    _bk(
        "FromPlatformFlagConstDisallowed",
        "from-platform-flag-const-disallowed",
        "FROM --platform flag should not use a constant value",
        "use --platform=$BUILDPLATFORM (or drop the flag)",
    ),
    _bk(
        "CopyIgnoredFile",
        "copy-ignored-file",
        "Attempting to Copy file that is excluded by .dockerignore",
        "remove the path from .dockerignore or from the instruction",
        experimental=True,
    ),
    _bk(
        "InvalidDefinitionDescription",
        "invalid-definition-description",
        "Comment for build stage or argument should follow the format: "
        "`# <arg/stage name> <description>`. If this is not intended to be a description "
        "comment, add an empty line or comment between the instruction and the comment.",
        "start the comment with the name it describes",
        experimental=True,
    ),
    _bk(
        "ExposeProtoCasing",
        "expose-proto-casing",
        "Protocol in EXPOSE instruction should be lowercase",
        "write the protocol in lowercase (80/tcp)",
    ),
    _bk(
        "ExposeInvalidFormat",
        "expose-invalid-format",
        "IP address and host-port mapping should not be used in EXPOSE instruction. "
        "This will become an error in a future release",
        "expose the container port only (EXPOSE 80); publish with run -p",
    ),
)

_GANTRY_RULES = (
    *(
        Rule(r.name, r.description, r.fix, buildkit=False)
        for r in practices.PRACTICE_RULES.values()
    ),
    Rule(
        "UnconsumedBuildArgs",
        "Build arguments were given that no ARG instruction declares",
        "declare them with ARG in the stage that needs them, or drop the --build-arg",
        buildkit=False,
    ),
)

#: Every rule by name, BuildKit's first.
RULES: dict[str, Rule] = {r.name: r for r in (*_BUILDKIT_RULES, *_GANTRY_RULES)}


# --- configuration (# check=...) ------------------------------------------------------


@dataclass(frozen=True)
class CheckConfig:
    skip: frozenset[str] = frozenset()
    skip_all: bool = False
    error: bool = False
    experimental: frozenset[str] = frozenset()
    experimental_all: bool = False

    @classmethod
    def parse(cls, text: str | None) -> CheckConfig:
        """BuildKit's ``ParseLintOptions``. Raises :class:`DockerfileError`."""
        text = (text or "").strip()
        if not text:
            return cls()
        skip: frozenset[str] = frozenset()
        experimental: frozenset[str] = frozenset()
        skip_all = experimental_all = error = False
        for part in text.split(";", 2):
            key, sep, value = part.partition("=")
            if not sep:
                raise _config_error(f"invalid check option {go_quote(part)}")
            key, value = key.strip(), value.strip()
            if key == "skip":
                if value == "all":
                    skip_all = True
                else:
                    skip = frozenset(v.strip() for v in value.split(","))
            elif key == "experimental":
                if value == "all":
                    experimental_all = True
                else:
                    experimental = frozenset(v.strip() for v in value.split(","))
            elif key == "error":
                parsed = _go_parse_bool(value)
                if parsed is None:
                    raise _config_error(
                        f"failed to parse check option {go_quote(part)}: strconv.ParseBool: "
                        f"parsing {go_quote(value)}: invalid syntax"
                    )
                error = parsed
            else:
                raise _config_error(f"invalid check option {go_quote(key)}")
        return cls(skip, skip_all, error, experimental, experimental_all)

    def enabled(self, rule: Rule) -> bool:
        if rule.experimental:
            return self.experimental_all or rule.name in self.experimental
        return not self.skip_all and rule.name not in self.skip


def _config_error(message: str) -> DockerfileError:
    return DockerfileError(f"failed to parse check options: {message}")


def _go_parse_bool(value: str) -> bool | None:
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


# --- results -------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One rule firing. ``line`` is 0 when the finding is about no line (the context)."""

    rule: Rule
    message: str
    line: int
    end_line: int
    level: str = "warning"
    fix: str = ""
    file: str | None = None

    @property
    def location(self) -> str:
        name = self.file or "Dockerfile"
        return f"{name}:{self.line}" if self.line else name

    def as_dict(self) -> dict[str, Any]:
        """The shape of ``docker build --check --format json`` (plus level and fix)."""
        out: dict[str, Any] = {
            "ruleName": self.rule.name,
            "description": self.rule.description,
            "url": self.rule.url,
            "detail": self.message,
            "level": self.level,
            "fix": self.fix,
        }
        if self.line:
            out["location"] = {
                "sourceIndex": 0,
                "ranges": [{"start": {"line": self.line}, "end": {"line": self.end_line}}],
            }
        return out


@dataclass
class CheckReport:
    findings: list[Finding]
    config: CheckConfig
    file: str | None = None
    #: an error that stopped the checks part way (BuildKit's lint ``buildError``)
    error: DockerfileError | None = None

    @property
    def failed(self) -> bool:
        """True when an error-level check fired (``# check=error=true``) or planning failed."""
        return self.error is not None or any(f.level == "error" for f in self.findings)

    def violation_message(self) -> str | None:
        """BuildKit's build error under ``error=true``: ``lint violation found for rules: ...``."""
        names = sorted({f.rule.name for f in self.findings if f.level == "error"})
        return f"lint violation found for rules: {', '.join(names)}" if names else None

    def raise_for_violations(self) -> None:
        """Raise :class:`DockerfileError` when ``error=true`` made a finding an error."""
        message = self.violation_message()
        if message is not None:
            raise DockerfileError(message, file=self.file)


# --- the checks ----------------------------------------------------------------------


class _Collector:
    def __init__(self, config: CheckConfig, file: str | None) -> None:
        self.config = config
        self.file = file
        self.findings: list[Finding] = []

    def wants(self, name: str) -> bool:
        return self.config.enabled(RULES[name])

    def add(
        self, name: str, message: str, line: int, end_line: int, fix: str | None = None
    ) -> None:
        rule = RULES[name]
        if not self.config.enabled(rule):
            return
        self.findings.append(
            Finding(
                rule=rule,
                message=message,
                line=line,
                end_line=end_line or line,
                level="error" if self.config.error else "warning",
                fix=fix or rule.fix,
                file=self.file,
            )
        )


def run_checks(
    source: str | bytes,
    *,
    file: str | None = None,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    context_dir: str | os.PathLike[str] | None = None,
    dockerfile_path: str | os.PathLike[str] | None = None,
    base_env: Callable[[str], Mapping[str, str] | None] | None = None,
    builtin_args: Mapping[str, str] | None = None,
    check: str | None = None,
    best_practices: bool = True,
) -> CheckReport:
    """Check a Dockerfile; see the module doc.

    ``file`` is the name shown in findings; ``context_dir`` (with ``dockerfile_path``
    for a ``<name>.dockerignore``) enables CopyIgnoredFile and the context-size check;
    ``base_env(image)`` returns the ENV of a base image (None when unknown: stages built
    on an image whose ENV is unknown are not checked for UndefinedVar, so that variables
    the image defines are not reported); ``builtin_args`` replaces the automatic platform
    args (host platform by default); ``check`` replaces the ``# check=`` directive.
    """
    args = dict(build_args or {})
    directive = check if check is not None else args.get("BUILDKIT_DOCKERFILE_CHECK")
    try:
        result = parse(source, file=file)
    except DockerfileError as exc:
        report = CheckReport(findings=[], config=CheckConfig.parse(directive), file=file)
        report.error = exc
        return report
    if directive is None:
        directive = result.directives.check
    config = CheckConfig.parse(directive)
    out = _Collector(config, file)
    report = CheckReport(findings=out.findings, config=config, file=file)
    _parse_phase(result, out)
    try:
        instructions = parse_instructions(result)
        graph = _graph(result, instructions, args, target, builtin_args)
    except DockerfileError as exc:
        report.error = exc
        _finish(report)
        return report
    try:
        _dispatch_phase(
            result,
            graph,
            out,
            args=args,
            all_stages=target is None,
            builtin_args=builtin_args,
            base_env=base_env,
            context_dir=os.fspath(context_dir) if context_dir is not None else None,
            dockerfile_path=dockerfile_path,
            best_practices=best_practices,
        )
    except DockerfileError as exc:
        report.error = exc
    _finish(report)
    return report


def _finish(report: CheckReport) -> None:
    order = {id(f): i for i, f in enumerate(report.findings)}
    report.findings.sort(key=lambda f: (f.line == 0, f.line, order[id(f)]))


def _graph(
    result: ParseResult,
    instructions: list[Instruction],
    build_args: Mapping[str, str],
    target: str | None,
    builtin_args: Mapping[str, str] | None,
) -> StageGraph:
    dockerfile = Dockerfile(
        instructions=instructions,
        directives=result.directives,
        warnings=result.warnings,
        file=result.file,
    )
    builtin = builtin_args if builtin_args is not None else platform_args(overrides=build_args)
    return build_stage_graph(dockerfile, build_args=build_args, target=target, builtin_args=builtin)


# -- parse phase: what BuildKit checks while reading instructions and stage names -------


def _written_keyword(original: str) -> str:
    return original.split(None, 1)[0] if original.strip() else original


def _parse_phase(result: ParseResult, out: _Collector) -> None:
    for warning in result.warnings:
        if warning.rule == "NoEmptyContinuation":
            out.add("NoEmptyContinuation", "Empty continuation line", warning.line, warning.line)
    seen_from = False
    lower = upper = 0
    stage_names: set[str] = set()
    for node in result.nodes:
        line, end = node.start_line, node.end_line
        name = node.name
        if name == "from":
            seen_from = True
            _check_from_node(node, out)
            if len(node.args) == 3:
                stage = node.args[2].lower()
                if stage in ("context", "scratch"):
                    out.add(
                        "ReservedStageName",
                        "Stage name should not use the same name as reserved stage "
                        f"{go_quote(stage)}",
                        line,
                        end,
                    )
                if stage in stage_names:
                    out.add(
                        "DuplicateStageName",
                        f"Duplicate stage name {go_quote(stage)}, stage names should be unique",
                        line,
                        end,
                    )
                stage_names.add(stage)
                _definition_description(node, "FROM", [stage], out)
        elif name == "maintainer":
            out.add(
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label",
                line,
                end,
            )
        elif name == "arg":
            keys = [w.partition("=")[0] for w in node.args]
            _definition_description(node, "ARG", keys, out)
        if seen_from:
            keyword = node.keyword
            if keyword == keyword.lower():
                lower += 1
            elif keyword == keyword.upper():
                upper += 1
    majority_lower = lower > upper
    seen_from = False
    for node in result.nodes:
        seen_from = seen_from or node.name == "from"
        if not seen_from:
            continue
        keyword = node.keyword
        if majority_lower and keyword != keyword.lower():
            casing = "lowercase"
        elif not majority_lower and keyword != keyword.upper():
            casing = "uppercase"
        else:
            continue
        out.add(
            "ConsistentInstructionCasing",
            f"Command '{keyword}' should match the case of the command majority ({casing})",
            node.start_line,
            node.end_line,
            f"write {keyword.upper() if casing == 'uppercase' else keyword.lower()}",
        )


def _check_from_node(node: Node, out: _Collector) -> None:
    args = node.args
    if len(args) != 3:
        return
    stage = args[2]
    if stage != stage.lower():
        out.add(
            "StageNameCasing",
            f"Stage name '{stage}' should be lowercase",
            node.start_line,
            node.end_line,
            f"rename the stage to '{stage.lower()}'",
        )
    keyword, as_word = node.keyword, args[1]
    from_lower, from_upper = keyword == keyword.lower(), keyword == keyword.upper()
    if not from_lower and not from_upper:
        return
    if (from_lower and as_word != as_word.lower()) or (from_upper and as_word != as_word.upper()):
        out.add(
            "FromAsCasing",
            f"'{as_word}' and '{keyword}' keywords' casing do not match",
            node.start_line,
            node.end_line,
            f"write '{as_word.lower() if from_lower else as_word.upper()}'",
        )


def _definition_description(node: Node, instruction: str, keys: list[str], out: _Collector) -> None:
    if not node.comments or not keys:
        return
    first = node.comments[-1].split(" ")[0]
    if first in keys:
        return
    example = keys[0] if len(keys) == 1 else "<arg_key>"
    out.add(
        "InvalidDefinitionDescription",
        f"Comment for {instruction} should follow the format: `# {example} <description>`",
        node.start_line,
        node.end_line,
    )


# -- dispatch phase: stages, args and expanded instructions --------------------------------

_SECRET = re.compile(
    r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)"
)
_SECRET_ALLOW = re.compile(r"(?i)(?:_|^)(?:public|file|version)(?:_|$)")


def _secret_key(instruction: str, key: str, instr: Instruction, out: _Collector) -> None:
    if _SECRET.search(key) and not _SECRET_ALLOW.search(key):
        out.add(
            "SecretsUsedInArgOrEnv",
            f"Do not use ARG or ENV instructions for sensitive data ({instruction} {go_quote(key)})",
            instr.start_line,
            instr.end_line,
        )


def _stage_checks_from(
    stage: Stage, scope: GlobalScope, defaults: GlobalScope | None, out: _Collector
) -> None:
    src = stage.source
    line, end = src.start_line, src.end_line
    known = scope.known()
    try:
        image = scope.expand(src.image)
    except ExpansionError:
        image = None
    if image is not None:
        _undefined_in_from(image.unmatched, known, line, end, out)
    if defaults is not None:
        try:
            default_image = defaults.expand(src.image).result
            parse_reference(default_image)
        except (ExpansionError, InvalidReference):
            out.add(
                "InvalidDefaultArgInFrom",
                f"Default value for ARG {src.image} results in empty or invalid base image name",
                line,
                end,
            )
    if src.platform is None:
        return
    try:
        plat = scope.expand(src.platform)
    except ExpansionError:
        return
    _undefined_in_from(plat.unmatched, known, line, end, out)
    redundant = plat.used == {"TARGETPLATFORM"} and not plat.unmatched
    if redundant and plat.result == scope.values.get("TARGETPLATFORM"):
        out.add(
            "RedundantTargetPlatform",
            f"Setting platform to predefined {src.platform} in FROM is redundant as this "
            "is the default behavior",
            line,
            end,
        )
    if not plat.used and not plat.unmatched:
        try:
            parsed = Platform.parse(plat.result)
        except ValueError:
            return
        name = stage.name or ""
        if parsed.os in name or parsed.architecture in name:
            return
        out.add(
            "FromPlatformFlagConstDisallowed",
            f"FROM --platform flag should not use constant value {go_quote(plat.result)}",
            line,
            end,
        )


def _undefined_in_from(
    unmatched: Iterable[str], known: set[str], line: int, end: int, out: _Collector
) -> None:
    for name in sorted(unmatched):
        if name in known:
            continue
        message = f"FROM argument '{name}' is not declared"
        suggestion = closest(name, sorted(known))
        if suggestion:
            message += f" (did you mean {suggestion}?)"
        out.add("UndefinedArgInFrom", message, line, end)


def _dispatch_phase(
    result: ParseResult,
    graph: StageGraph,
    out: _Collector,
    *,
    args: dict[str, str],
    all_stages: bool,
    builtin_args: Mapping[str, str] | None,
    base_env: Callable[[str], Mapping[str, str] | None] | None,
    context_dir: str | None,
    dockerfile_path: str | os.PathLike[str] | None,
    best_practices: bool,
) -> None:
    escape = result.directives.escape
    meta = graph.meta_arg_instructions
    scope = global_scope(
        meta, build_args=args, builtin=builtin_args, escape=escape, file=result.file
    )
    try:
        defaults: GlobalScope | None = global_scope(meta, builtin=builtin_args, escape=escape)
    except DockerfileError:
        defaults = None
    env_of: Callable[[Stage], Mapping[str, str] | None] | None = None
    if base_env is not None:
        lookup = base_env

        def env_of(stage: Stage) -> Mapping[str, str] | None:
            return lookup(stage.image)

    resolver = Resolver(scope, build_args=args, base_env=env_of, file=result.file)
    matcher, has_ignore = _ignore_matcher(context_dir, dockerfile_path)
    stages = graph.stages if all_stages else graph.reachable()
    steps_of: dict[int, list[Step]] = {}
    for stage in stages:
        _stage_checks_from(stage, scope, defaults, out)
        if best_practices and stage.base is None:
            for hit in practices.base_image_hits(stage.image, stage.line, stage.source.end_line):
                _hit(out, hit)
        steps = steps_of[stage.index] = resolver.resolve(stage)
        _stage_steps(stage, steps, resolver.base_env_known(stage), matcher, out, best_practices)
    if best_practices:
        _final_user(graph.stages[-1] if all_stages else graph.target, steps_of, out)
        if context_dir is not None:
            for hit in practices.context_hits(context_dir, has_ignore):
                _hit(out, hit)
        # BUILDKIT_* and SOURCE_DATE_EPOCH are the frontend's own (buildx sends the latter
        # from the environment)
        unused = [
            k
            for k in resolver.unconsumed()
            if not k.startswith("BUILDKIT_") and k != "SOURCE_DATE_EPOCH"
        ]
        if unused:
            out.add(
                "UnconsumedBuildArgs",
                f"One or more build-args [{' '.join(unused)}] were not consumed",
                0,
                0,
            )


def _hit(out: _Collector, hit: practices.Hit) -> None:
    out.add(hit.rule, hit.message, hit.line, hit.end_line, hit.fix)


def _ignore_matcher(
    context_dir: str | None, dockerfile_path: str | os.PathLike[str] | None
) -> tuple[PatternMatcher | None, bool]:
    if context_dir is None:
        return None, False
    path = find_dockerignore(context_dir, dockerfile_path)
    if path is None:
        return None, False
    matcher = PatternMatcher(read_dockerignore(path))
    return (matcher if matcher else None), True


def _stage_steps(
    stage: Stage,
    steps: list[Step],
    env_known: bool,
    matcher: PatternMatcher | None,
    out: _Collector,
    best_practices: bool,
) -> None:
    workdir_set = _workdir_set_by_base(stage)
    shell_set = _shell_set_by_base(stage)
    last: dict[str, Instruction] = {}
    for step in steps:
        instr, done = step.instruction, step.expanded
        line, end = instr.start_line, instr.end_line
        keyword = _written_keyword(instr.original)
        if env_known and step.unmatched and not isinstance(instr, ExposeInstr):
            for name in sorted(step.unmatched):
                message = f"Usage of undefined variable '${name}'"
                suggestion = closest(name, sorted(step.env))
                if suggestion:
                    message += f" (did you mean ${suggestion}?)"
                out.add("UndefinedVar", message, line, end)
        if isinstance(done, (EnvInstr, LabelInstr)):
            if done.legacy:
                out.add(
                    "LegacyKeyValueFormat",
                    f'"{keyword} key=value" should be used instead of legacy "{keyword} key value" '
                    "format",
                    line,
                    end,
                    f"write {keyword} {done.pairs[0][0]}=...",
                )
            if isinstance(done, EnvInstr):
                for key, _ in done.pairs:
                    _secret_key("ENV", key, instr, out)
        elif isinstance(done, ArgInstr):
            for pair in done.args:
                _secret_key("ARG", pair.name, instr, out)
        elif isinstance(done, WorkdirInstr):
            if not workdir_set and not done.path.startswith("/"):
                out.add(
                    "WorkdirRelativePath",
                    f"Relative workdir {go_quote(done.path)} can have unexpected results if the "
                    "base image changes",
                    line,
                    end,
                )
            workdir_set = True
        elif isinstance(done, ShellInstr):
            shell_set = True
        elif isinstance(done, (CmdInstr, EntrypointInstr, HealthcheckInstr)):
            kind = type(done).keyword
            previous = last.get(kind)
            if previous is not None:
                out.add(
                    "MultipleInstructionsDisallowed",
                    f"Multiple {_written_keyword(previous.original)} instructions should not be "
                    "used in the same stage because only the last one will be used",
                    previous.start_line,
                    previous.end_line,
                )
            last[kind] = instr
            if isinstance(done, (CmdInstr, EntrypointInstr)) and done.shell_form and not shell_set:
                out.add(
                    "JSONArgsRecommended",
                    f"JSON arguments recommended for {keyword} to prevent unintended behavior "
                    "related to OS signals",
                    line,
                    end,
                    f'use {keyword} ["executable", "param1"]',
                )
        elif isinstance(done, ExposeInstr):
            _expose(done, out)
        elif isinstance(done, (CopyInstr, AddInstr)) and matcher is not None:
            _copy_ignored(done, matcher, out)
        if best_practices:
            if isinstance(done, RunInstr):
                for hit in practices.run_hits(done, step.env):
                    _hit(out, hit)
            elif isinstance(done, AddInstr):
                for hit in practices.add_hits(done):
                    _hit(out, hit)
    if best_practices:
        for hit in practices.consecutive_run_hits(stage.instructions):
            _hit(out, hit)


def _chain(stage: Stage) -> list[Stage]:
    chain: list[Stage] = []
    current: Stage | None = stage.base
    while current is not None and current not in chain:
        chain.append(current)
        current = current.base
    return chain


def _workdir_set_by_base(stage: Stage) -> bool:
    return any(isinstance(i, WorkdirInstr) for s in _chain(stage) for i in s.instructions)


def _shell_set_by_base(stage: Stage) -> bool:
    return any(isinstance(i, ShellInstr) for s in _chain(stage) for i in s.instructions)


def _split_port(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _expose(expose: ExposeInstr, out: _Collector) -> None:
    for raw in expose.ports:
        ip, host, container = _split_port(raw)
        _, _, proto = container.partition("/")
        if proto != proto.lower():
            out.add(
                "ExposeProtoCasing",
                f"Defined protocol '{raw}' in EXPOSE instruction should be lowercase",
                expose.start_line,
                expose.end_line,
                f"write EXPOSE {raw.lower()}",
            )
        if ip or host:
            out.add(
                "ExposeInvalidFormat",
                "EXPOSE instruction should not define an IP address or host-port mapping, "
                f"found '{raw}'",
                expose.start_line,
                expose.end_line,
                f"write EXPOSE {container}",
            )


def _clean(path: str) -> str:
    cleaned = posixpath.normpath(path) if path else "."
    return "/" if cleaned.startswith("//") and cleaned.strip("/") == "" else cleaned


def _literal_prefix(pattern: str) -> tuple[str, bool]:
    elems = pattern.split("/")
    for i, elem in enumerate(elems):
        if any(c in elem for c in "*?["):
            return "/".join(elems[:i]), True
    return pattern, False


def _at_or_below(path: str, base: str) -> bool:
    return base == "" or path == base or path.startswith(base + "/")


def _negated(matcher: PatternMatcher, src: str) -> bool:
    src = src.lstrip("/")
    if src == ".":
        src = ""
    for pattern in matcher.patterns:
        if not pattern.exclusion:
            continue
        prefix, wildcard = _literal_prefix(str(pattern))
        if _at_or_below(prefix, src) or (wildcard and _at_or_below(src, prefix)):
            return True
    return False


def _copy_ignored(instr: CopyInstr | AddInstr, matcher: PatternMatcher, out: _Collector) -> None:
    if isinstance(instr, CopyInstr) and instr.from_:
        return
    verb = "Add" if isinstance(instr, AddInstr) else "Copy"
    for raw in instr.sources:
        if is_remote_source(raw):
            continue
        src = _clean(raw)
        if src in (".", "/"):
            root_ignored = any(
                not p.exclusion and str(p) in ("*", "**", "**/*") for p in matcher.patterns
            )
            if not root_ignored:
                continue
        if _negated(matcher, src):
            continue
        if matcher.matches_or_parent_matches(src.lstrip("/") or "."):
            out.add(
                "CopyIgnoredFile",
                f"Attempting to {verb} file {go_quote(src)} that is excluded by .dockerignore",
                instr.start_line,
                instr.end_line,
            )


def _final_user(stage: Stage, steps: Mapping[int, list[Step]], out: _Collector) -> None:
    users: list[tuple[str, int, int]] = []
    for s in reversed([stage, *_chain(stage)]):
        for step in steps.get(s.index, []):
            if isinstance(step.expanded, UserInstr):
                i = step.expanded
                users.append((i.user, i.start_line, i.end_line))
    for hit in practices.root_user_hits(users, stage.line):
        _hit(out, hit)


# --- rendering -----------------------------------------------------------------------


def format_text(report: CheckReport) -> str:
    """``Dockerfile:3: warning: Rule: message`` with the fix and the rule's URL below."""
    lines: list[str] = []
    for f in report.findings:
        lines.append(f"{f.location}: {f.level}: {f.rule.name}: {f.message}")
        lines.append(f"    fix: {f.fix}")
        if f.rule.url:
            lines.append(f"    {f.rule.url}")
    count = len(report.findings)
    if count == 0:
        lines.append("Check complete, no warnings found.")
    else:
        noun = "warning" if count == 1 else "warnings"
        verb = "has" if count == 1 else "have"
        lines.append(f"Check complete, {count} {noun} {verb} been found!")
    return "\n".join(lines)


def format_json(report: CheckReport) -> dict[str, Any]:
    """``{"warnings": [...], "sources": [...], "buildError": ...}`` as Docker prints it."""
    out: dict[str, Any] = {
        "warnings": [f.as_dict() for f in report.findings],
        "sources": [{"filename": report.file or "Dockerfile", "language": "Dockerfile"}],
    }
    if report.error is not None:
        err: dict[str, Any] = {"message": report.error.message}
        if report.error.line:
            line = report.error.line
            err["location"] = {
                "sourceIndex": 0,
                "ranges": [{"start": {"line": line}, "end": {"line": line}}],
            }
        out["buildError"] = err
    return out


def rules_table() -> list[Rule]:
    """Every rule, for ``gantry lint --list-rules``."""
    return list(RULES.values())
