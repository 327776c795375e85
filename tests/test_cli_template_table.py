"""The tabwriter behind every ``table`` format, and docker's formatter around it.

Column semantics are Go's text/tabwriter (the vectors below are cases from its
test table, run with rune counting), plus docker's fork measuring wide runes as 2.
"""

from __future__ import annotations

import pytest

from gantry.cli import formatter
from gantry.cli.table import TabWriter, cell_width, tabulate
from gantry.errors import TemplateError

# (minwidth, tabwidth, padding, padchar, flags, src, expected)
GO_CASES: list[tuple[int, int, int, str, dict[str, bool], str, str]] = [
    (8, 0, 1, ".", {}, "", ""),
    (8, 0, 1, ".", {}, "\n\n\n", "\n\n\n"),
    (8, 0, 1, ".", {}, "a\nb\nc", "a\nb\nc"),
    (8, 0, 1, ".", {}, "\t", ""),
    (8, 0, 1, ".", {"align_right": True}, "\t", ""),
    (8, 0, 1, ".", {}, "*\t*", "*.......*"),
    (8, 0, 1, ".", {}, "*\t*\n", "*.......*\n"),
    (8, 0, 1, ".", {}, "*\t*\t", "*.......*"),
    (8, 0, 1, ".", {"debug": True}, "*\t*\t", "*.......|*"),
    (8, 0, 1, ".", {"align_right": True}, "*\t*\t", ".......**"),
    (8, 0, 1, ".", {}, "\t\n", "........\n"),
    (8, 0, 1, ".", {}, "a) foo", "a) foo"),
    (8, 0, 1, " ", {}, "b) foo\tbar", "b) foo  bar"),
    (8, 0, 1, ".", {}, "c) foo\tbar\t", "c) foo..bar"),
    (8, 0, 1, ".", {}, "d) foo\tbar\n", "d) foo..bar\n"),
    (8, 0, 1, ".", {}, "e) foo\tbar\t\n", "e) foo..bar.....\n"),
    (8, 0, 1, "*", {}, "Hello, world!\n", "Hello, world!\n"),
    (1, 0, 0, ".", {}, "1\t2\t3\t4\n11\t222\t3333\t44444\n", "1.2..3...4\n11222333344444\n"),
    (1, 0, 0, ".", {}, "1\t2\t3\t4\f11\t222\t3333\t44444\n", "1234\n11222333344444\n"),
    (
        1,
        0,
        0,
        ".",
        {"debug": True},
        "1\t2\t3\t4\f11\t222\t3333\t44444\n",
        "1|2|3|4\n---\n11|222|3333|44444\n",
    ),
    (5, 0, 0, ".", {}, "1\t2\t3\t4\n", "1....2....3....4\n"),
    (5, 0, 0, ".", {}, "1\t2\t3\t4\t\n", "1....2....3....4....\n"),
    (
        8,
        0,
        1,
        ".",
        {},
        "本\tb\tc\naa\t本本本\tcccc\tddddd\naaa\tbbbb\n",
        "本.......b.......c\naa......本本本.....cccc....ddddd\naaa.....bbbb\n",
    ),
    (
        8,
        0,
        1,
        " ",
        {"align_right": True},
        "a\tè\tc\t\naa\tèèè\tcccc\tddddd\t\naaa\tèèèè\t\n",
        "       a       è       c\n      aa     èèè    cccc   ddddd\n     aaa    èèèè\n",
    ),
    (2, 0, 0, " ", {}, "a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n", "a  b  c\naa bbbcccc\naaabbbb\n"),
    (
        4,
        0,
        1,
        "-",
        {},
        "4444\t日本語\t22\t1\t333\n999999999\t22\n7\t22\n\t\t\t88888888\n\n"
        "666666\t666666\t666666\t4444\n1\t1\t999999999\t0000000000\n",
        "4444------日本語-22--1---333\n999999999-22\n7---------22\n------------------88888888\n\n"
        "666666-666666-666666----4444\n1------1------999999999-0000000000\n",
    ),
    (
        4,
        0,
        3,
        ".",
        {},
        "4444\t333\t22\t1\t333\n999999999\t22\n7\t22\n\t\t\t88888888\n\n"
        "666666\t666666\t666666\t4444\n1\t1\t999999999\t0000000000\n",
        "4444........333...22...1...333\n999999999...22\n7...........22\n"
        "....................88888888\n\n"
        "666666...666666...666666......4444\n1........1........999999999...0000000000\n",
    ),
    (
        1,
        0,
        2,
        " ",
        {"align_right": True},
        ".0\t.3\t2.4\t-5.1\t\n23.0\t12345678.9\t2.4\t-989.4\t\n5.1\t12.0\t2.4\t-7.0\t\n"
        ".0\t0.0\t332.0\t8908.0\t\n.0\t-.3\t456.4\t22.1\t\n.0\t1.2\t44.4\t-13.3\t\t",
        "    .0          .3    2.4    -5.1\n  23.0  12345678.9    2.4  -989.4\n"
        "   5.1        12.0    2.4    -7.0\n    .0         0.0  332.0  8908.0\n"
        "    .0         -.3  456.4    22.1\n    .0         1.2   44.4   -13.3",
    ),
    (4, 0, 0, ".", {}, "a\t\tb", "a.......b"),
    (4, 0, 0, ".", {"discard_empty_columns": True}, "a\t\tb", "a.......b"),
    (4, 0, 0, ".", {"discard_empty_columns": True}, "a\v\vb", "a...b"),
    (4, 0, 0, ".", {"discard_empty_columns": True, "align_right": True}, "a\v\vb", "...ab"),
    (
        100,
        100,
        0,
        "\t",
        {},
        "a\tb\t\td\na\tb\t\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n",
        "a\tb\t\td\na\tb\t\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n",
    ),
    (
        100,
        100,
        0,
        "\t",
        {"discard_empty_columns": True},
        "a\vb\v\vd\na\vb\v\vd\ve\na\na\vb\vc\vd\na\vb\vc\vd\ve\n",
        "a\tb\td\na\tb\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n",
    ),
]


def _chunks(src: str, mode: str) -> list[str]:
    if mode == "whole":
        return [src]
    if mode == "chars":
        return list(src)
    out, i, d = [], 0, 0  # growing slices, as Go's test writes "fibonacci" pieces
    while i < len(src):
        out.append(src[i : i + d])
        i, d = i + d, d + 1
        if i + d > len(src):
            d = len(src) - i
    return out


@pytest.mark.parametrize("mode", ["whole", "chars", "growing"])
@pytest.mark.parametrize(
    ("minwidth", "tabwidth", "padding", "padchar", "flags", "src", "want"), GO_CASES
)
def test_go_tabwriter_semantics(
    minwidth: int,
    tabwidth: int,
    padding: int,
    padchar: str,
    flags: dict[str, bool],
    src: str,
    want: str,
    mode: str,
) -> None:
    w = TabWriter(minwidth, tabwidth, padding, padchar, display_width=False, **flags)
    out = []
    for piece in _chunks(src, mode):
        w.write(piece)
    out.append(w.flush())
    assert "".join(out) == want


def test_docker_fork_counts_wide_runes_twice() -> None:
    assert cell_width("本") == 2
    assert cell_width("e\u0301") == 1  # combining accent takes no column
    assert tabulate("本\tb\naa\tc\n", 1, 1, 1, ".") == "本.b\naa.c\n"


def test_docker_table_defaults() -> None:
    # minwidth 10, padding 3: short columns are still 10 wide; trailing cell unpadded
    assert tabulate("A\tB\nxx\tyyyy\n") == "A         B\nxx        yyyy\n"
    # an empty last column keeps its padding, as docker prints it
    assert tabulate("NAME\tERROR\nabcdefghijk\t\n") == "NAME          ERROR\nabcdefghijk   \n"


class Img(formatter.Row):
    go_type = "*formatter.imageContext"
    json_fields = ("ID", "Repository", "Size")

    def __init__(self, repo: str, ident: str, size: str) -> None:
        self.Repository = repo
        self.ID = ident
        self.Size = size


ROWS = [Img("ubuntu", "abc", "72.9MB"), Img("a-much-longer-name", "def", "5MB")]
HEADER = {"Repository": "REPOSITORY", "ID": "IMAGE ID", "Size": "SIZE"}


def test_table_format_builds_header_from_header_map() -> None:
    out = formatter.render("table {{.Repository}}\\t{{.ID}}\\t{{.Size}}", ROWS, HEADER)
    assert out == (
        "REPOSITORY           IMAGE ID   SIZE\n"
        "ubuntu               abc        72.9MB\n"
        "a-much-longer-name   def        5MB\n"
    )


def test_table_header_functions_and_missing_headers() -> None:
    out = formatter.render("table {{upper .Repository}}\\t{{.Nope}}", [], HEADER)
    # header functions keep the title; an unknown column prints <no value>, as docker does
    assert out == "REPOSITORY   <no value>\n"
    # a header that fails to execute keeps what was written before the error
    out = formatter.render("table {{.ID}}\\t{{.Nope | len}}|", [], HEADER)
    assert out == "IMAGE ID   \n"


def test_json_and_custom_formats() -> None:
    assert formatter.render("json", ROWS[:1], HEADER) == (
        '{"ID":"abc","Repository":"ubuntu","Size":"72.9MB"}\n'
    )
    assert (
        formatter.render("{{.Repository}}:{{.ID}}", ROWS) == "ubuntu:abc\na-much-longer-name:def\n"
    )
    assert formatter.render("{{.ID}}", []) == ""


def test_format_errors_are_wrapped_like_docker() -> None:
    with pytest.raises(TemplateError) as info:
        formatter.render("{{.Nope}}", ROWS)
    assert str(info.value) == (
        'template parsing error: template: :1:2: executing "" at <.Nope>: '
        "can't evaluate field Nope in type *formatter.imageContext"
    )
    with pytest.raises(TemplateError) as info:
        formatter.render("{{.ID", ROWS)
    assert str(info.value) == "template parsing error: template: :1: unclosed action"


def test_final_format_and_truncate_id() -> None:
    assert formatter.final_format("table  {{.A}}\\t{{.B}}\\n ") == "{{.A}}\t{{.B}}\n"
    assert formatter.final_format("json") == "{{json .}}"
    assert formatter.is_table("table") and not formatter.is_table("json")
    assert formatter.truncate_id("sha256:0123456789abcdef0123") == "0123456789ab"
    assert formatter.truncate_id("0123456789abcdef") == "0123456789ab"
