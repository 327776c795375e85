"""``--format`` as docker/cli applies it to lists (``images``, ``history``, ``system df``...).

A format is one of:

- ``table`` or ``table TEMPLATE``: rows go through the tabwriter (docker's settings),
  preceded by a header row made by executing the same template over the command's
  header map (``{"ID": "IMAGE ID", ...}``), with docker's header functions so that
  ``{{upper .Name}}`` still prints the header text; a field without a header prints
  ``<no value>``, exactly as docker does;
- ``json``: one ``{{json .}}`` object per row;
- any other text: a Go template executed once per row, each followed by a newline.

``\\t`` and ``\\n`` typed literally in the format become tab and newline; leading and
trailing spaces are dropped. Errors are :class:`TemplateError` worded as docker's:
``template parsing error: template: :1:2: executing "" at <.Nope>: ...``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gantry.cli.table import docker_tabwriter
from gantry.cli.template import HEADER_FUNCS, Template
from gantry.errors import TemplateError

__all__ = [
    "JSON_FORMAT",
    "QUIET_FORMAT",
    "HeaderMap",
    "Row",
    "final_format",
    "is_json",
    "is_table",
    "parse_format",
    "render",
    "truncate_id",
]

TABLE_KEY = "table"
RAW_KEY = "raw"
JSON_KEY = "json"
QUIET_FORMAT = "{{.ID}}"
JSON_FORMAT = "{{json .}}"


def is_table(fmt: str) -> bool:
    return fmt.startswith(TABLE_KEY)


def is_json(fmt: str) -> bool:
    return fmt == JSON_KEY


def final_format(fmt: str) -> str:
    """The template text docker executes for ``fmt`` (its ``preFormat``)."""
    if is_table(fmt):
        text = fmt[len(TABLE_KEY) :]
    elif is_json(fmt):
        text = JSON_FORMAT
    else:
        text = fmt
    return text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def parse_format(fmt: str, **kwargs: Any) -> Template:
    """Parse the template of ``fmt``; errors carry docker's ``template parsing error:``."""
    try:
        return Template(final_format(fmt), **kwargs)
    except TemplateError as err:
        raise TemplateError(f"template parsing error: {err}") from None


class HeaderMap(dict[str, str]):
    """docker's ``SubHeaderContext``: field name -> column title."""

    go_type = "formatter.SubHeaderContext"

    def Label(self, name: str) -> str:  # a template method, named as docker names it
        last = name.split(".")[-1]
        return last.replace("-", " ").replace("_", " ")


class Row:
    """Base for row objects: public attributes are template fields, ``__json__``
    gives docker's ``{{json .}}`` object (every field, keys sorted)."""

    go_type = "*formatter.context"
    json_fields: tuple[str, ...] = ()

    def __json__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in sorted(self.json_fields)}


def render(
    fmt: str,
    rows: Iterable[Any],
    header: Mapping[str, str] | None = None,
    *,
    template: Template | None = None,
    on_row: Callable[[Any], None] | None = None,
) -> str:
    """Render ``rows`` with ``fmt`` as docker's ``formatter.Context.Write`` does.

    ``on_row`` is called with each row before it is executed (docker's image list
    uses it to learn which columns need computing).
    """
    tmpl = template or parse_format(fmt)
    buf: list[str] = []
    for row in rows:
        if on_row is not None:
            on_row(row)
        try:
            tmpl.execute_into(buf, row)
        except TemplateError as err:
            raise TemplateError(f"template parsing error: {err}") from None
        buf.append("\n")
    if not is_table(fmt):
        return "".join(buf)
    head: list[str] = []
    try:
        tmpl.execute_into(head, HeaderMap(header or {}), funcs=HEADER_FUNCS)
    except TemplateError:
        pass  # docker ignores header errors and keeps what was written
    tw = docker_tabwriter()
    tw.write("".join(head))
    tw.write("\n")
    tw.write("".join(buf))
    return tw.flush()


def truncate_id(ident: str) -> str:
    """docker's ``TruncateID``: drop an ``algo:`` prefix, keep 12 characters."""
    _, sep, rest = ident.partition(":")
    if sep:
        ident = rest
    return ident[:12]
