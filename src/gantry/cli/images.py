"""Image verbs: ``images``/``image ls``, ``tag``, ``rmi``, ``image prune``, ``inspect``, ``history``.

Thin commands over :class:`gantry.store.Store`; what they print follows docker/cli's
formatters (columns, headers, ``--format`` fields, ``Untagged:``/``Deleted:`` lines,
the prune prompt and ``Total reclaimed space:``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from gantry import reference, timeutil
from gantry.cli import formatter
from gantry.cli.template import NIL, NilMap, NilSlice, Struct, Template
from gantry.cli.units import (
    created_since,
    go_time_string,
    human_size,
    human_size_with_precision,
    rfc3339_nano,
)
from gantry.errors import GantryError, ImageNotFound, InvalidReference, TemplateError, UsageError

# ----------------------------------------------------------------------------- helpers


def open_store(ctx: click.Context) -> Any:
    from gantry.store import Store

    return Store(ctx.find_root().obj["root"])


def parse_filters(values: Iterable[str]) -> dict[str, list[str]]:
    """``--filter key=value`` flags, as docker's ``filters.ParseFlag`` reads them."""
    out: dict[str, list[str]] = {}
    for v in values:
        if "=" not in v:
            raise UsageError(
                f'invalid argument "{v}" for "-f, --filter" flag: '
                "bad format of filter (expected name=value)"
            )
        key, _, value = v.partition("=")
        out.setdefault(key.strip().lower(), []).append(value.strip())
    return out


def check_filter_keys(filters: dict[str, list[str]], allowed: Sequence[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise UsageError(f"invalid filter '{key}'")


def _split_familiar(ref: str) -> tuple[str, str]:
    """``ubuntu:22.04`` -> (``ubuntu``, ``22.04``); ``x@sha256:..`` -> (``x``, ``sha256:..``)."""
    if "@" in ref:
        name, _, dg = ref.partition("@")
        return name, dg
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, ""
    return name, tag


def _fail_all(errors: list[str]) -> None:
    for msg in errors:
        click.echo(f"Error: {msg}", err=True)
    raise click.exceptions.Exit(1)


#: ``--format`` of the list commands (docker's wording)
list_format_option = click.option(
    "--format",
    "fmt",
    default="",
    metavar="FORMAT",
    help="Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template",
)


# ----------------------------------------------------------------------------- images

IMAGE_HEADER = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "VirtualSize": "SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
}
DEFAULT_IMAGE_TABLE = (
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t"
    "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
)
DEFAULT_IMAGE_TABLE_DIGEST = (
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
    "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
)


class ImageRow(formatter.Row):
    """One ``docker images`` row (docker/cli's ``imageContext``)."""

    go_type = "*formatter.imageContext"
    json_fields = (
        "Containers",
        "CreatedAt",
        "CreatedSince",
        "Digest",
        "ID",
        "Repository",
        "SharedSize",
        "Size",
        "Tag",
        "UniqueSize",
        "VirtualSize",
    )

    def __init__(
        self,
        image: Any,
        repo: str,
        tag: str,
        digest: str,
        *,
        trunc: bool,
        now: float,
        shared_size: int = -1,
        containers: int = -1,
    ) -> None:
        self._image = image
        self.Repository = repo
        self.Tag = tag
        self.Digest = digest
        self._trunc = trunc
        self._now = now
        self._shared = shared_size
        self._containers = containers

    @property
    def ID(self) -> str:
        ident = str(self._image.id)
        return formatter.truncate_id(ident) if self._trunc else ident

    @property
    def CreatedSince(self) -> str:
        created = self._image.created
        if created is None:
            return ""
        return created_since(created, self._now)

    @property
    def CreatedAt(self) -> str:
        return go_time_string(self._image.created or 0)

    @property
    def Size(self) -> str:
        return human_size_with_precision(self._image.size, 3)

    @property
    def VirtualSize(self) -> str:
        return human_size(self._image.size)

    @property
    def Containers(self) -> str:
        return "N/A" if self._containers < 0 else str(self._containers)

    @property
    def SharedSize(self) -> str:
        return "N/A" if self._shared < 0 else human_size(self._shared)

    @property
    def UniqueSize(self) -> str:
        if self._shared < 0:
            return "N/A"
        return human_size(self._image.size - self._shared)


def image_rows(
    image: Any,
    tags: Sequence[str],
    digests: Sequence[str],
    *,
    show_digests: bool,
    need_digest: bool,
    trunc: bool,
    now: float,
    **extra: int,
) -> list[ImageRow]:
    """docker/cli's ``imageFormatTaggedAndDigest``: one row per repository tag (times
    digest when digests are shown), then rows for digest-only repositories."""
    if not tags and not digests:
        return [ImageRow(image, "<none>", "<none>", "<none>", trunc=trunc, now=now, **extra)]
    repo_tags: dict[str, list[str]] = {}
    repo_digests: dict[str, list[str]] = {}
    for ref in tags:
        name, tag = _split_familiar(ref)
        repo_tags.setdefault(name, []).append(tag)
    for ref in digests:
        name, dg = _split_familiar(ref)
        repo_digests.setdefault(name, []).append(dg)
    rows: list[ImageRow] = []
    for repo in sorted(repo_tags):
        dgs = repo_digests.pop(repo, [])
        if not need_digest:
            dgs = []
        for tag in repo_tags[repo]:
            if not dgs:
                rows.append(ImageRow(image, repo, tag, "<none>", trunc=trunc, now=now, **extra))
            for dg in dgs:
                rows.append(ImageRow(image, repo, tag, dg, trunc=trunc, now=now, **extra))
    for repo in sorted(repo_digests):
        if show_digests:
            for dg in repo_digests[repo]:
                rows.append(ImageRow(image, repo, "<none>", dg, trunc=trunc, now=now, **extra))
        else:
            rows.append(ImageRow(image, repo, "<none>", "", trunc=trunc, now=now, **extra))
    return rows


IMAGE_FILTERS = ("dangling", "label", "label!", "before", "since", "reference", "until")


def _bool_filter(filters: dict[str, list[str]], key: str) -> bool | None:
    value: bool | None = None
    for v in filters.get(key, []):
        low = v.lower()
        if low in ("true", "1"):
            value = True
        elif low in ("false", "0"):
            value = False
        else:
            raise UsageError(f"Invalid filter '{key}={v}'")
    return value


def select_images(
    store: Any, filters: dict[str, list[str]], *, all_images: bool, now: float
) -> list[tuple[Any, list[str], list[str]]]:
    """(image, familiar tags, familiar digests) to list, as the daemon filters them."""
    from gantry.store import filters as store_filters

    check_filter_keys(filters, IMAGE_FILTERS)
    dangling = _bool_filter(filters, "dangling")
    before = since = until = None
    if filters.get("before"):
        before = store.resolve(filters["before"][-1]).created or 0.0
    if filters.get("since"):
        since = store.resolve(filters["since"][-1]).created or 0.0
    for value in filters.get("until", []):
        # moby: every until= lowers the "created before" bound
        ts = timeutil.parse_timestamp(value, now)
        until = ts if until is None else min(until, ts)
    include, exclude = filters.get("label", []), filters.get("label!", [])
    patterns = filters.get("reference", [])
    for p in patterns:
        reference.path_match(p, "")  # a bad pattern is an error even with no images

    out: list[tuple[Any, list[str], list[str]]] = []
    for img in store.images():
        created = img.created or 0.0
        if before is not None and created >= before:
            continue
        if since is not None and created <= since:
            continue
        if until is not None and created >= until:
            continue
        if dangling is True and img.repo_tags:
            continue
        if dangling is False and not img.repo_tags:
            continue
        if not all_images and dangling is None and img.intermediate:
            continue
        if (include or exclude) and not store_filters.match_labels(img.labels, include, exclude):
            continue
        if patterns:
            tags = _matching(img.repo_tags, patterns)
            digests = _matching(img.repo_digests, patterns)
            if not tags and not digests:
                continue
        else:
            tags = list(img.familiar_tags)
            digests = list(img.familiar_digests)
        out.append((img, tags, digests))
    return out


def _matching(names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The familiar forms of ``names`` that a ``reference=`` pattern matches
    (distribution's ``FamiliarMatch``: ``name:tag``, then ``name``)."""
    out = []
    for full in names:
        ref = reference.parse(full)
        if any(reference.familiar_match(p, ref) for p in patterns):
            out.append(ref.familiar())
    return out


@click.command("ls", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("repository", required=False, metavar="[REPOSITORY[:TAG]]")
@click.option(
    "-a",
    "--all",
    "all_images",
    is_flag=True,
    help="Show all images (default hides intermediate images)",
)
@click.option("--digests", is_flag=True, help="Show digests")
@click.option(
    "-f",
    "--filter",
    "filters",
    multiple=True,
    metavar="FILTER",
    help="Filter output based on conditions provided",
)
@list_format_option
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.pass_context
def ls(
    ctx: click.Context,
    repository: str | None,
    all_images: bool,
    digests: bool,
    filters: tuple[str, ...],
    fmt: str,
    no_trunc: bool,
    quiet: bool,
) -> None:
    """List images."""
    flt = parse_filters(filters)
    if repository:
        flt.setdefault("reference", []).append(repository)
    source = fmt or formatter.TABLE_KEY
    if source == formatter.TABLE_KEY:
        if quiet:
            source = formatter.QUIET_FORMAT
        else:
            source = DEFAULT_IMAGE_TABLE_DIGEST if digests else DEFAULT_IMAGE_TABLE
    elif formatter.is_table(source) and digests and "{{.Digest}}" not in source:
        source += "\t{{.Digest}}"
    tmpl = formatter.parse_format(source)
    need_digest = digests or "{{.Digest}}" in source
    now = time.time()
    with open_store(ctx) as store:
        selected = select_images(store, flt, all_images=all_images, now=now)
    rows: list[ImageRow] = []
    for img, tags, dgs in selected:
        rows += image_rows(
            img,
            tags,
            dgs,
            show_digests=digests,
            need_digest=need_digest,
            trunc=not no_trunc,
            now=now,
        )
    click.echo(formatter.render(source, rows, IMAGE_HEADER, template=tmpl), nl=False)


# -------------------------------------------------------------------------------- tag


@click.command("tag", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", metavar="SOURCE_IMAGE[:TAG]")
@click.argument("target", metavar="TARGET_IMAGE[:TAG]")
@click.option(
    "--remote",
    is_flag=True,
    help="Tag in the registry, without pulling (TARGET in the same registry, or a bare tag)",
)
@click.option("--insecure", is_flag=True, help="With --remote: allow an insecure registry")
@click.pass_context
def tag(ctx: click.Context, source: str, target: str, remote: bool, insecure: bool) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    if remote:
        from gantry.cli import remote as _remote

        _remote.tag_remote(source, target, insecure=insecure)
        return
    if insecure:
        raise UsageError("--insecure requires --remote")
    # docker/cli's client checks both names before asking the daemon, in these words
    from gantry import reference

    for name, parse in ((source, reference.parse_any), (target, reference.parse)):
        try:
            parse(name)
        except InvalidReference as err:
            raise InvalidReference(
                f'Error parsing reference: "{name}" is not a valid repository/tag: {err}'
            ) from err
    with open_store(ctx) as store:
        store.tag(source, target)


# --------------------------------------------------------------------------------- rm


@click.command("rm", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("images", nargs=-1, required=True, metavar="IMAGE [IMAGE...]")
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents")
@click.pass_context
def rm(ctx: click.Context, images: tuple[str, ...], force: bool, no_prune: bool) -> None:
    """Remove one or more images."""
    errors: list[str] = []
    with open_store(ctx) as store:
        for spec in images:
            try:
                events = store.remove(spec, force=force, prune=not no_prune)
            except ImageNotFound as err:
                if not force:
                    errors.append(str(err))
                else:  # docker/cli: reported, but not a failure under -f
                    click.echo(f"Error: {err}", err=True)
                continue
            except GantryError as err:
                errors.append(str(err))
                continue
            for ev in events:
                click.echo(str(ev))
    if errors:
        _fail_all(errors)


# ------------------------------------------------------------------------------ prune

_PRUNE_ALL_WARNING = (
    "WARNING! This will remove all images without at least one container associated to them."
)
_PRUNE_DANGLING_WARNING = "WARNING! This will remove all dangling images."


def confirm(message: str) -> bool:
    """docker's ``PromptForConfirmation``: ``MESSAGE [y/N] `` and a line from stdin."""
    click.echo(f"{message}\nAre you sure you want to continue? [y/N] ", nl=False)
    import sys

    answer = sys.stdin.readline() if sys.stdin is not None else ""
    return answer.strip().lower() == "y"


@click.command("prune", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-a",
    "--all",
    "all_images",
    is_flag=True,
    help="Remove all unused images, not just dangling ones",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="FILTER",
    help="Provide filter values (e.g. 'until=<timestamp>')",
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.pass_context
def prune(ctx: click.Context, all_images: bool, filters: tuple[str, ...], force: bool) -> None:
    """Remove unused images."""
    flt = parse_filters(filters)
    check_filter_keys(flt, ("until", "label", "label!", "dangling"))
    if not force and not confirm(_PRUNE_ALL_WARNING if all_images else _PRUNE_DANGLING_WARNING):
        return
    with open_store(ctx) as store:
        report = store.prune(all=all_images, filters=flt)
    lines: list[str] = []
    if report.deleted:
        lines.append("Deleted Images:")
        for ev in report.deleted:
            if hasattr(ev, "ref"):
                lines.append(f"untagged: {ev.ref}")
            else:
                lines.append(f"deleted: {ev.id}")
        click.echo("\n".join(lines) + "\n")
    click.echo(f"Total reclaimed space: {human_size(report.reclaimed)}")


# ---------------------------------------------------------------------------- inspect


#: What Docker's image config struct (the OCI ImageConfig plus Healthcheck, OnBuild and Shell)
#: gives for a field the config leaves out: `-f '{{.Config.User}}'` prints "" and
#: `{{json .Config.Entrypoint}}` null, never a missing-field error.
_CONFIG_ZERO: dict[str, Any] = {
    "User": "",
    "ExposedPorts": NilMap(),
    "Env": NilSlice(),
    "Entrypoint": NilSlice(),
    "Cmd": NilSlice(),
    "Volumes": NilMap(),
    "WorkingDir": "",
    "Labels": NilMap(),
    "StopSignal": "",
    "ArgsEscaped": False,
    "Healthcheck": NIL,
    "OnBuild": NilSlice(),
    "Shell": NilSlice(),
}


def inspect_document(store: Any, image: Any) -> Struct:
    """``docker image inspect`` for one image, with Docker's field order."""
    raw = json.loads(store.config_bytes(image))
    layers = store.layers(image)
    cfg = raw.get("config") or {}
    config = (
        Struct(cfg, go_type="*container.Config", zero=_CONFIG_ZERO)
        if isinstance(cfg, dict)
        else cfg
    )
    rootfs = raw.get("rootfs") or {}
    doc = Struct(go_type="image.InspectResponse")
    doc["Id"] = str(image.id)
    doc["RepoTags"] = list(image.familiar_tags)
    doc["RepoDigests"] = list(image.familiar_digests)
    doc["Parent"] = str(image.parent or "")
    doc["Comment"] = _comment(raw)
    doc["Created"] = raw.get("created") or ""
    doc["DockerVersion"] = raw.get("docker_version") or ""
    doc["Author"] = raw.get("author") or ""
    doc["Config"] = config
    doc["Architecture"] = raw.get("architecture") or image.architecture
    if raw.get("variant"):
        doc["Variant"] = raw["variant"]
    doc["Os"] = raw.get("os") or image.os
    if raw.get("os.version"):
        doc["OsVersion"] = raw["os.version"]
    doc["Size"] = image.size
    doc["GraphDriver"] = Struct(
        {"Data": _snapshot_dirs(store, layers), "Name": "overlayfs"}, go_type="storage.DriverData"
    )
    doc["RootFS"] = Struct(
        {"Type": rootfs.get("type", "layers"), "Layers": [str(layer.diff_id) for layer in layers]},
        go_type="image.RootFS",
    )
    doc["Metadata"] = Struct(
        {"LastTagTime": rfc3339_nano(image.last_tag_time)}, go_type="image.Metadata"
    )
    return doc


def _comment(raw: dict[str, Any]) -> str:
    """moby: the config's ``comment`` (``import -m``, ``commit -m``), else the comment of
    the last history entry (``buildkit.dockerfile.v0`` for BuildKit images)."""
    comment = raw.get("comment")
    if isinstance(comment, str) and comment:
        return comment
    history = raw.get("history") or []
    if history and isinstance(history[-1], dict):
        return str(history[-1].get("comment") or "")
    return ""


def _snapshot_dirs(store: Any, layers: Sequence[Any]) -> dict[str, str] | None:
    """overlay2's ``GraphDriver.Data`` for an image: ``UpperDir`` is the top layer's
    unpacked directory, ``LowerDir`` the ones below it (top first, ``:``-joined).
    None (JSON null, as Docker's containerd store shows) until every layer is unpacked."""
    from gantry.errors import NotFound

    dirs = []
    for layer in reversed(layers):
        try:
            snap = store.snapshot_info(str(layer.chain_id))
        except NotFound:
            return None
        if not snap.ready:
            return None
        dirs.append(str(snap.path))
    if not dirs:
        return None
    data = {"UpperDir": dirs[0]}
    if len(dirs) > 1:
        data["LowerDir"] = ":".join(dirs[1:])
    return dict(sorted(data.items()))  # Go writes map keys sorted


def _plain(v: Any) -> Any:
    return json.loads(json.dumps(v))


def render_inspect(template_text: str, doc: Struct) -> str:
    """docker's ``TemplateInspector``: the typed document first, then the raw JSON
    with ``missingkey=error`` (whose error is the one reported)."""
    try:
        tmpl = Template(template_text)
    except TemplateError as err:
        raise TemplateError(f"template parsing error: {err}") from None
    try:
        return tmpl.execute(doc)
    except TemplateError:
        pass
    try:
        return Template(template_text, missingkey="error").execute(_plain(doc))
    except TemplateError as err:
        raise TemplateError(f"template parsing error: {err}") from None


@click.command("inspect", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("images", nargs=-1, required=True, metavar="IMAGE [IMAGE...]")
@click.option(
    "-f",
    "--format",
    "fmt",
    default="",
    metavar="FORMAT",
    help="Format output using a custom template: 'json' or a Go template",
)
@click.option(
    "--remote",
    is_flag=True,
    help="Inspect the image in its registry, without pulling (like skopeo inspect)",
)
@click.option("--platform", help="With --remote: the image of an index (default: this host's)")
@click.option(
    "--raw", is_flag=True, help="With --remote: the manifest or index as the registry sent it"
)
@click.option("--config", "show_config", is_flag=True, help="With --remote: the image config")
@click.option("--no-tags", is_flag=True, help="With --remote: do not list the repository's tags")
@click.option("--insecure", is_flag=True, help="With --remote: allow an insecure registry")
@click.pass_context
def inspect(
    ctx: click.Context,
    images: tuple[str, ...],
    fmt: str,
    remote: bool,
    platform: str | None,
    raw: bool,
    show_config: bool,
    no_tags: bool,
    insecure: bool,
) -> None:
    """Display detailed information on one or more images."""
    if remote:
        _inspect_remote(images, fmt, platform, raw, show_config, no_tags, insecure)
        return
    for flag, given in (
        ("--platform", platform),
        ("--raw", raw),
        ("--config", show_config),
        ("--no-tags", no_tags),
        ("--insecure", insecure),
    ):
        if given:
            raise UsageError(f"{flag} requires --remote")
    docs: list[Struct] = []
    errors: list[str] = []
    with open_store(ctx) as store:
        for spec in images:
            try:
                docs.append(inspect_document(store, store.resolve(spec)))
            except ImageNotFound as err:
                errors.append(str(err))
    if fmt and fmt != "json":
        text = fmt.replace("\\t", "\t").replace("\\n", "\n")
        for doc in docs:
            click.echo(render_inspect(text, doc))
    else:
        body = json.dumps(docs, indent=4, ensure_ascii=False)
        click.echo(body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    if errors:
        _fail_all(errors)


def _inspect_remote(
    images: Sequence[str],
    fmt: str,
    platform: str | None,
    raw: bool,
    show_config: bool,
    no_tags: bool,
    insecure: bool,
) -> None:
    """``inspect --remote``: each image as its registry holds it, nothing pulled.

    The records (skopeo's fields, or the configs with ``--config``) come as one JSON
    array, as local ``image inspect`` prints; ``-f`` renders each; ``--raw`` prints each
    manifest's bytes as sent. A name that fails is reported at the end, as docker does.
    """
    from gantry.cli import remote as _remote

    if raw and (fmt or show_config):
        raise UsageError("--raw cannot be combined with --format or --config")
    docs: list[Any] = []
    errors: list[str] = []
    for name in images:
        try:
            doc = _remote.inspect_remote(
                name,
                platform=platform,
                raw=raw,
                show_config=show_config,
                tags=not no_tags,
                insecure=insecure,
            )
        except GantryError as err:
            errors.append(str(err))
            continue
        if isinstance(doc, bytes):
            click.echo(doc.decode("utf-8", "replace"))
        else:
            docs.append(doc)
    if not raw:
        if fmt and fmt != "json":
            text = fmt.replace("\\t", "\t").replace("\\n", "\n")
            for doc in docs:
                click.echo(render_inspect(text, Struct(doc, go_type="inspect.remote")))
        else:
            click.echo(json.dumps(docs, indent=4, ensure_ascii=False))
    if errors:
        _fail_all(errors)


# ---------------------------------------------------------------------------- history

HISTORY_HEADER = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}
DEFAULT_HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
NON_HUMAN_HISTORY_TABLE = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"


def ellipsis(s: str, max_width: int) -> str:
    """docker/cli's ``Ellipsis``: cut to ``max_width`` terminal columns, ending in ``…``."""
    from gantry.cli.table import cell_width

    if max_width <= 0:
        return ""
    if max_width == 1:
        return s[:1]
    if s.isascii():
        return s if len(s) <= max_width else s[: max_width - 1] + "…"
    if cell_width(s) <= max_width:
        return s
    width = 0
    for i, ch in enumerate(s):
        width += 2 if cell_width(ch) == 2 else 1
        if width > max_width - 1:
            return s[:i] + "…"
    return s  # pragma: no cover - the loop always returns


class HistoryRow(formatter.Row):
    """One ``docker history`` row (docker/cli's ``historyContext``)."""

    go_type = "*formatter.historyContext"
    json_fields = ("Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size")

    def __init__(self, entry: Any, *, trunc: bool, human: bool, now: float) -> None:
        self._e = entry
        self._trunc = trunc
        self._human = human
        self._now = now

    @property
    def ID(self) -> str:
        ident = str(self._e.id) if self._e.id is not None else "<missing>"
        return formatter.truncate_id(ident) if self._trunc else ident

    @property
    def CreatedAt(self) -> str:
        ts = int(self._e.created or 0)
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def CreatedSince(self) -> str:
        if not self._human:
            return self.CreatedAt
        return created_since(int(self._e.created or 0), self._now)

    @property
    def CreatedBy(self) -> str:
        text = self._e.created_by.replace("\t", " ")
        return ellipsis(text, 45) if self._trunc else text

    @property
    def Size(self) -> str:
        if self._human:
            return human_size_with_precision(self._e.size, 3)
        return str(self._e.size)

    @property
    def Comment(self) -> str:
        return str(self._e.comment)


def _parse_bool(value: str, flag: str) -> bool:
    v = value.lstrip("=").lower()
    if v in ("1", "t", "true"):
        return True
    if v in ("0", "f", "false"):
        return False
    raise UsageError(
        f'invalid argument "{value}" for "{flag}" flag: strconv.ParseBool: parsing "{value}": invalid syntax'
    )


@click.command("history", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("image", metavar="IMAGE")
@list_format_option
@click.option(
    "-H",
    "--human",
    default="true",
    is_flag=False,
    flag_value="true",
    metavar="BOOL",
    help="Print sizes and dates in human readable format (default true)",
)
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.pass_context
def history(
    ctx: click.Context, image: str, fmt: str, human: str, no_trunc: bool, quiet: bool
) -> None:
    """Show the history of an image."""
    is_human = _parse_bool(human, "-H, --human")
    source = fmt or formatter.TABLE_KEY
    if source == formatter.TABLE_KEY:
        if quiet:
            source = formatter.QUIET_FORMAT
        elif not is_human:
            source = NON_HUMAN_HISTORY_TABLE
        else:
            source = DEFAULT_HISTORY_TABLE
    tmpl = formatter.parse_format(source)
    with open_store(ctx) as store:
        entries = store.history(store.resolve(image))
    now = time.time()
    rows = [HistoryRow(e, trunc=not no_trunc, human=is_human, now=now) for e in entries]
    click.echo(formatter.render(source, rows, HISTORY_HEADER, template=tmpl), nl=False)
