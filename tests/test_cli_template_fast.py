"""The template fast path (text, fields, ``if FIELD``) gives exactly the walker's output."""

from __future__ import annotations

from typing import Any

import pytest

from gantry.cli import formatter
from gantry.cli.images import DEFAULT_IMAGE_TABLE, IMAGE_HEADER
from gantry.cli.template import Struct, Template
from gantry.errors import TemplateError


class Row:
    go_type = "*formatter.rowContext"

    def __init__(self, name: str, size: int, inner: Any = None) -> None:
        self.Name = name
        self._size = size
        self.Inner = inner

    @property
    def Size(self) -> str:
        return f"{self._size}B"

    @property
    def Count(self) -> int:
        return self._size

    def Method(self) -> str:
        return "called"


def both(text: str, data: Any) -> tuple[str, str]:
    fast = Template(text)
    slow = Template(text)
    slow._fast = None
    try:
        got_fast = fast.execute(data)
    except TemplateError as err:
        got_fast = f"error: {err}"
    try:
        got_slow = slow.execute(data)
    except TemplateError as err:
        got_slow = f"error: {err}"
    return got_fast, got_slow


TEMPLATES = [
    "{{.Name}}",
    "{{.Name}}\t{{.Size}}\n",
    "{{if .Name}}yes{{else}}no{{end}}",
    "{{if .Count}}{{.Count}}{{end}}",
    "{{.Inner.Name}}",
    "{{.Inner.Size}} {{.Inner.Inner}}",
    "{{.Method}}",
    "{{.Missing}}",
    "{{.Inner.Missing}}",
    "{{.Name}} {{.Method}}",
    "{{if .Inner}}{{.Inner.Name}}{{else}}none{{end}}",
]
DATA = [
    Row("a", 3, Row("b", 0)),
    Row("", 0),
    Struct({"Name": "s", "Size": "1", "Count": 0, "Inner": None}, go_type="x.S"),
    {"Name": "m", "Count": 2},
    "just a string",
    None,
]


@pytest.mark.parametrize("text", TEMPLATES)
def test_fast_path_matches_the_walker(text: str) -> None:
    for data in DATA:
        fast, slow = both(text, data)
        assert fast == slow, (text, data)


def test_fast_path_is_taken_only_for_simple_templates() -> None:
    assert Template("a {{.A}} {{if .B.C}}x{{else}}{{.D}}{{end}}")._fast is not None
    assert Template("{{.A | upper}}")._fast is None
    assert Template("{{json .}}")._fast is None
    assert Template("{{range .A}}{{.}}{{end}}")._fast is None
    assert Template("{{$x := .A}}{{$x}}")._fast is None
    assert Template("{{.lower}}")._fast is None  # not a Go field name: the walker decides


def test_a_failed_fast_row_leaves_no_partial_output() -> None:
    # the row bails out at .Method after writing "a "; the walker re-renders it whole
    tmpl = Template("{{.Name}} {{.Method}}")
    out: list[str] = ["before|"]
    tmpl.execute_into(out, Row("a", 1))
    assert "".join(out) == "before|a called"


def test_docker_default_images_table_header_and_rows() -> None:
    class R(formatter.Row):
        def __init__(self, since: str) -> None:
            self.Repository, self.Tag, self.ID, self.Size = "busybox", "latest", "0123", "1MB"
            self.CreatedSince = since

    got = formatter.render(DEFAULT_IMAGE_TABLE, [R("2 days ago"), R("")], IMAGE_HEADER)
    assert got.splitlines() == [
        "REPOSITORY   TAG       IMAGE ID   CREATED      SIZE",
        "busybox      latest    0123       2 days ago   1MB",
        "busybox      latest    0123       N/A          1MB",
    ]
