"""Image best practices that BuildKit does not check and users ask for.

Each function looks at one thing (a RUN, a FROM, an ADD, a stage, the build context)
and returns :class:`Hit` s; :mod:`gantry.dockerfile.checks` turns them into findings,
honours ``# check=skip=...`` for them as for BuildKit's rules, and renders them.

RUN commands are read the way a reviewer reads them: the shell line (or exec-form
argv, or heredoc script) is cut into simple commands at ``&&``, ``||``, ``;``, ``|``
and newlines, leading ``VAR=value`` assignments and ``sudo`` are skipped, and only the
command name and its options are looked at. That is not a shell parser, and it does
not need to be: it errs on the side of saying nothing.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gantry.dockerfile.instructions import AddInstr, Instruction, RunInstr
from gantry.dockerfile.remote import is_remote_source
from gantry.errors import InvalidReference
from gantry.reference import parse as parse_reference

__all__ = [
    "PRACTICE_RULES",
    "Hit",
    "PracticeRule",
    "add_hits",
    "base_image_hits",
    "consecutive_run_hits",
    "context_hits",
    "root_user_hits",
    "run_hits",
]


@dataclass(frozen=True)
class PracticeRule:
    name: str
    description: str
    fix: str


@dataclass(frozen=True)
class Hit:
    rule: str
    message: str
    line: int
    end_line: int
    fix: str | None = None


def _rules(*rules: PracticeRule) -> dict[str, PracticeRule]:
    return {r.name: r for r in rules}


PRACTICE_RULES = _rules(
    PracticeRule(
        "AptNoInstallRecommends",
        "apt-get install without --no-install-recommends installs recommended packages too",
        "add --no-install-recommends to apt-get install",
    ),
    PracticeRule(
        "AptListsNotCleaned",
        "apt-get install leaves the package lists (/var/lib/apt/lists) in the layer",
        "end the same RUN with && rm -rf /var/lib/apt/lists/*",
    ),
    PracticeRule(
        "AptUpdateAlone",
        "apt-get update in a RUN without an install: a later install can use a stale cached index",
        "run apt-get update && apt-get install ... in one RUN",
    ),
    PracticeRule(
        "PipNoCacheDir",
        "pip install without --no-cache-dir keeps pip's download cache in the layer",
        "add --no-cache-dir (or ENV PIP_NO_CACHE_DIR=1, or a cache mount)",
    ),
    PracticeRule(
        "BaseImageNotPinned",
        "The base image is not pinned to a version: builds change when 'latest' moves",
        "name a specific tag (alpine:3.20) or pin a digest (alpine@sha256:...)",
    ),
    PracticeRule(
        "RunsAsRoot",
        "The image runs as root: no USER instruction sets a non-root user",
        "create a user and add USER <name> after the steps that need root",
    ),
    PracticeRule(
        "UseCopyInsteadOfAdd",
        "ADD is used where COPY suffices (a local file that is not an archive to unpack)",
        "use COPY; keep ADD for URLs, git sources and archives to unpack",
    ),
    PracticeRule(
        "ConsecutiveRunInstructions",
        "Consecutive RUN instructions each make a layer and could be one",
        "join them with && in one RUN (or use a heredoc: RUN <<EOF)",
    ),
    PracticeRule(
        "LargeContextWithoutDockerignore",
        "A large build context has no .dockerignore",
        "add a .dockerignore that excludes .git, build outputs and dependency directories",
    ),
)

# --- RUN ----------------------------------------------------------------------------

_SEPARATORS = re.compile(r"&&|\|\||;|\||\n|(?<![<>])&(?![>])")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PIP = re.compile(r"^pip(?:[0-9]+(?:\.[0-9]+)?)?$")
_PYTHON = re.compile(r"^python(?:[0-9]+(?:\.[0-9]+)?)?$")


def _script(run: RunInstr) -> str:
    parts = list(run.cmd) if not run.shell_form else [run.cmd[0] if run.cmd else ""]
    parts += [doc.content for doc in run.heredocs]
    return "\n".join(parts)


def _commands(script: str) -> list[list[str]]:
    """Simple commands as word lists (assignments, ``sudo`` and ``env`` dropped)."""
    out: list[list[str]] = []
    for segment in _SEPARATORS.split(script.replace("\\\n", " ")):
        try:
            words = shlex.split(segment, comments=True)
        except ValueError:
            words = segment.split()
        while words and (_ASSIGNMENT.match(words[0]) or words[0] in ("sudo", "env", "exec")):
            words.pop(0)
        if words:
            words[0] = posixpath.basename(words[0])
            out.append(words)
    return out


def _subcommand(words: Sequence[str]) -> str | None:
    """The first word after the command that is not an option."""
    return next((w for w in words[1:] if not w.startswith("-")), None)


def _is_apt(words: Sequence[str], action: str) -> bool:
    return bool(words) and words[0] in ("apt-get", "apt") and _subcommand(words) == action


def _is_pip_install(words: Sequence[str]) -> bool:
    if not words:
        return False
    if _PIP.match(words[0]):
        return _subcommand(words) == "install"
    if _PYTHON.match(words[0]) and len(words) > 3 and words[1] == "-m" and words[2] == "pip":
        return _subcommand(words[2:]) == "install"
    return False


def _cache_mounted(run: RunInstr, *prefixes: str) -> bool:
    for mount in run.mounts:
        target = (mount.target or "").rstrip("/")
        if mount.type in ("cache", "tmpfs") and any(
            target == p or target.startswith(p + "/") or p.startswith(target + "/")
            for p in prefixes
        ):
            return True
    return False


def run_hits(run: RunInstr, env: Mapping[str, str]) -> list[Hit]:
    """apt-get and pip habits in one RUN (``env``: the variables the RUN sees)."""
    commands = _commands(_script(run))
    line, end = run.start_line, run.end_line
    hits: list[Hit] = []
    installs = [w for w in commands if _is_apt(w, "install")]
    updates = [w for w in commands if _is_apt(w, "update")]
    upgrades = [w for w in commands if _is_apt(w, "upgrade") or _is_apt(w, "dist-upgrade")]
    script = _script(run)
    for words in installs:
        if "--no-install-recommends" not in words and "Install-Recommends=" not in script:
            hits.append(
                Hit(
                    "AptNoInstallRecommends",
                    f"'{' '.join(words[:2])}' without --no-install-recommends installs "
                    "recommended packages too",
                    line,
                    end,
                )
            )
            break
    if (installs or updates) and not _cache_mounted(run, "/var/lib/apt/lists", "/var/lib/apt"):
        cleaned = any(
            w[0] == "rm" and any(a.startswith("/var/lib/apt/lists") for a in w[1:])
            for w in commands
        )
        if not cleaned:
            hits.append(
                Hit(
                    "AptListsNotCleaned",
                    "apt package lists (/var/lib/apt/lists) are left in the layer",
                    line,
                    end,
                )
            )
    if updates and not installs and not upgrades:
        hits.append(
            Hit(
                "AptUpdateAlone",
                "'apt-get update' without an install in the same RUN: the index is cached "
                "apart from the packages installed later",
                line,
                end,
            )
        )
    pip_cache_off = env.get("PIP_NO_CACHE_DIR", "") not in ("", "0", "false", "no", "off")
    if not pip_cache_off and not _cache_mounted(run, "/root/.cache/pip", "/root/.cache"):
        for words in commands:
            if _is_pip_install(words) and "--no-cache-dir" not in words:
                hits.append(
                    Hit(
                        "PipNoCacheDir",
                        f"'{words[0]} install' without --no-cache-dir keeps its download "
                        "cache in the layer",
                        line,
                        end,
                    )
                )
                break
    return hits


def consecutive_run_hits(instructions: Sequence[Instruction]) -> list[Hit]:
    """One hit per group of two or more RUN instructions in a row (within one stage)."""
    hits: list[Hit] = []
    group: list[RunInstr] = []

    def flush() -> None:
        if len(group) > 1:
            first, last = group[0], group[-1]
            hits.append(
                Hit(
                    "ConsecutiveRunInstructions",
                    f"{len(group)} consecutive RUN instructions (lines {first.start_line}-"
                    f"{last.end_line}) make {len(group)} layers",
                    first.start_line,
                    last.end_line,
                )
            )
        group.clear()

    for instr in instructions:
        if isinstance(instr, RunInstr):
            group.append(instr)
        else:
            flush()
    flush()
    return hits


# --- FROM, USER, ADD ------------------------------------------------------------------


def base_image_hits(image: str, line: int, end_line: int) -> list[Hit]:
    """``image`` is the expanded FROM name of a stage whose base is not another stage."""
    if image == "scratch" or "$" in image:
        return []
    try:
        ref = parse_reference(image)
    except InvalidReference:  # InvalidDefaultArgInFrom's business, or a build error
        return []
    if ref.digest is not None:
        return []
    name = ref.familiar_name
    if ref.tag is None:
        message = f"Base image '{image}' has no tag and so uses '{name}:latest'"
    elif ref.tag == "latest":
        message = f"Base image '{image}' uses the moving 'latest' tag"
    else:
        return []
    return [
        Hit(
            "BaseImageNotPinned",
            message,
            line,
            end_line,
            f"name a specific tag ({name}:<version>) or pin a digest ({name}@sha256:...)",
        )
    ]


def _is_root(user: str) -> bool:
    name = user.split(":", 1)[0]
    return name in ("", "root", "0")


def root_user_hits(users: Sequence[tuple[str, int, int]], from_line: int) -> list[Hit]:
    """``users``: the expanded USER values of the final image's stage chain, in order."""
    if users and not _is_root(users[-1][0]):
        return []
    if users:
        user, line, end = users[-1]
        message = f"The image runs as root: the last USER is '{user}'"
        return [Hit("RunsAsRoot", message, line, end, "switch to a non-root USER at the end")]
    return [Hit("RunsAsRoot", "The image runs as root: no USER instruction", from_line, from_line)]


_ARCHIVE = re.compile(
    r"\.(?:tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst|tzst|tar\.lz4|gz|bz2|xz|zst|lz4)$",
    re.IGNORECASE,
)


def _is_remote(src: str) -> bool:
    return is_remote_source(src) or src.lower().endswith(".git") or "$" in src


def add_hits(add: AddInstr) -> list[Hit]:
    if add.checksum or add.keep_git_dir or add.unpack is not None:
        return []
    if any(_is_remote(s) or _ARCHIVE.search(s) for s in add.sources):
        return []
    shown = " ".join([*add.sources, *(f"<<{c.path}" for c in add.contents)])
    return [
        Hit(
            "UseCopyInsteadOfAdd",
            f"ADD of '{shown}' does nothing COPY would not: no URL, git source or archive",
            add.start_line,
            add.end_line,
            "use COPY " + " ".join([*add.sources, add.dest]) if add.sources else "use COPY",
        )
    ]


# --- the build context ----------------------------------------------------------------

DEFAULT_CONTEXT_FILES = 10_000
DEFAULT_CONTEXT_BYTES = 100 * 1024 * 1024


def _measure(root: str, max_files: int, max_bytes: int) -> tuple[int, int, bool]:
    """(files, bytes, over a limit); stops walking once over."""
    files = size = 0
    todo = [root]
    while todo:
        path = todo.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    todo.append(entry.path)
                    continue
                files += 1
                if entry.is_file(follow_symlinks=False):
                    size += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
            if files > max_files or size > max_bytes:
                return files, size, True
    return files, size, False


def context_hits(
    context_dir: str,
    has_ignore_file: bool,
    *,
    max_files: int = DEFAULT_CONTEXT_FILES,
    max_bytes: int = DEFAULT_CONTEXT_BYTES,
) -> list[Hit]:
    if has_ignore_file:
        return []
    files, size, over = _measure(context_dir, max_files, max_bytes)
    if not over:
        return []
    mib = size / (1024 * 1024)
    what = f"more than {max_files} files" if files > max_files else f"more than {mib:.0f} MiB"
    return [
        Hit(
            "LargeContextWithoutDockerignore",
            f"The build context {context_dir!r} holds {what} and has no .dockerignore",
            0,
            0,
        )
    ]
