"""Go text/template as docker --format runs it: table-driven cases and error wording.

Expected strings follow Go's documented semantics and the messages docker prints
(e.g. ``template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type
*formatter.clientContextContext``, seen from docker 28 on this machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from gantry.cli.template import Template, go_json, go_quote, go_sprintf, render
from gantry.errors import TemplateError

DATA: dict[str, Any] = {
    "Name": "web",
    "Id": "sha256:4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b",
    "Config": {
        "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"],
        "Labels": {"b.two": "2", "a.one": "1"},
        "Cmd": None,
        "ExposedPorts": {"80/tcp": {}},
    },
    "Size": 72_940_000,
    "Ratio": 0.25,
    "Big": 1e6,
    "Tags": ["web:1", "web:latest"],
    "Empty": [],
    "Flag": True,
    "Off": False,
    "Zero": 0,
    "Text": 'Hello <World> & "friends"',
}


@dataclass
class Ctx:
    """A Go struct: fields are attributes; unknown fields are errors."""

    ID: str
    Repository: str

    go_type = "*formatter.imageContext"

    def Label(self, name: str) -> str:  # a method taking an argument
        return f"label:{name}"


CASES: list[tuple[str, str]] = [
    # fields, nesting, maps
    ("{{.Name}}", "web"),
    ("{{.Config.Labels}}", "map[a.one:1 b.two:2]"),
    ("{{.Config.Env}}", "[PATH=/usr/bin LANG=C.UTF-8]"),
    ("{{.Config.Cmd}}", "<no value>"),
    ("{{.Config.Missing}}", "<no value>"),
    ("{{.Config.Missing.Deeper}}", "<no value>"),
    ('{{index .Config.Labels "a.one"}}', "1"),
    ('{{index .Config.Labels "nope"}}', "<no value>"),
    ("{{index .Tags 1}}", "web:latest"),
    ("{{.Size}} {{.Ratio}} {{.Big}} {{.Flag}} {{.Zero}}", "72940000 0.25 1e+06 true 0"),
    ("{{.}}" if False else "{{.Empty}}", "[]"),
    # json
    ("{{json .Config.Env}}", '["PATH=/usr/bin","LANG=C.UTF-8"]'),
    ("{{json .Text}}", '"Hello <World> & \\"friends\\""'),
    ("{{json .Config.Cmd}}", "null"),
    ("{{json .Ratio}} {{json .Big}}", "0.25 1000000"),
    ("{{json .Config.ExposedPorts}}", '{"80/tcp":{}}'),
    # pipelines and docker's functions
    ("{{.Name | upper}}", "WEB"),
    ('{{.Name | printf "%s-x"}}', "web-x"),
    ("{{upper .Name | lower}}", "web"),
    ('{{join .Tags ", "}}', "web:1, web:latest"),
    ('{{split "a:b:c" ":"}}', "[a b c]"),
    ('{{truncate (index (split .Id ":") 1) 12}}', "4c3b2a1f0e9d"),
    ("{{truncate .Name 2}}|{{truncate .Name 9}}", "we|web"),
    ('{{pad .Name 2 1}}|{{pad "" 2 1}}|', "  web ||"),
    ('{{title "hello wide-world_x"}}', "Hello Wide-World_x"),
    ('{{len .Tags}} {{len .Name}} {{len .Config.Labels}} {{len "héllo"}}', "2 3 2 6"),
    ("{{slice .Name 1}} {{slice .Tags 0 1}}", "eb [web:1]"),
    # conditionals and Go truthiness
    ("{{if .Flag}}y{{else}}n{{end}}", "y"),
    ("{{if .Off}}y{{else}}n{{end}}", "n"),
    ("{{if .Zero}}y{{else}}n{{end}}", "n"),
    ("{{if .Empty}}y{{else}}n{{end}}", "n"),
    ("{{if .Config.Cmd}}y{{else if .Tags}}tags{{else}}n{{end}}", "tags"),
    ("{{if and .Flag .Off}}y{{else}}n{{end}}", "n"),
    ("{{and .Flag .Name}} {{or .Off .Zero .Name}} {{or .Off .Zero}}", "web web 0"),
    ("{{not .Flag}} {{not .Empty}}", "false true"),
    ('{{if eq .Name "db" "web"}}match{{end}}', "match"),
    (
        '{{eq .Size 72940000}} {{ne .Name "web"}} {{lt 1 2}} {{le 2 2}} {{gt 1.5 2.5}} {{ge "b" "a"}}',
        "true false true true false true",
    ),
    ("{{with .Config}}{{.Env}}{{end}}", "[PATH=/usr/bin LANG=C.UTF-8]"),
    ("{{with .Config.Cmd}}x{{else}}none{{end}}", "none"),
    ("{{with .Config.Cmd}}x{{else with .Name}}{{.}}{{end}}", "web"),
    # range
    ("{{range .Tags}}<{{.}}>{{end}}", "<web:1><web:latest>"),
    ("{{range $i, $t := .Tags}}{{$i}}={{$t}};{{end}}", "0=web:1;1=web:latest;"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}", "a.one=1,b.two=2,"),
    ("{{range .Empty}}x{{else}}empty{{end}}", "empty"),
    ("{{range .Config.Cmd}}x{{end}}.", "."),
    ('{{range .Tags}}{{if eq . "web:1"}}{{continue}}{{end}}{{.}}{{end}}', "web:latest"),
    ("{{range .Tags}}{{.}}{{break}}{{end}}", "web:1"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{range .Tags}}{{$.Name}}{{end}}", "webweb"),
    # variables
    ("{{$n := .Name}}{{$n}}-{{$n | len}}", "web-3"),
    ("{{$x := 1}}{{if .Flag}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ('{{$x := "a"}}{{with .Config}}{{$x}}{{end}}', "a"),
    # whitespace and comments
    ("a  {{- .Name -}}  b", "awebb"),
    ("a\n  {{- /* gone */ -}}\n  b", "ab"),
    ("{{/* a comment */}}x", "x"),
    ("{{- .Name}}", "web"),
    ("x {{-3}}", "x -3"),
    # literals
    (
        "{{\"quoted\\tstr\"}} {{`raw\\t`}} {{'a'}} {{0x1F}} {{1_000}} {{0o17}} {{017}} {{1.5e3}} {{print nil}}",
        "quoted\tstr raw\\t 97 31 1000 15 15 1500 <nil>",
    ),
    ("{{true}} {{false}}", "true false"),
    # print family
    ('{{print "a" 1 2 "b"}}', "a1 2b"),
    ("{{println .Name .Size}}", "web 72940000\n"),
    (
        '{{printf "%-6s|%6s|%q|%v|%d|%05d|%x|%X|%o|%b|%c|%U" "ab" "cd" "q" .Tags 42 42 255 255 8 5 65 65}}',
        'ab    |    cd|"q"|[web:1 web:latest]|42|00042|ff|FF|10|101|A|U+0041',
    ),
    (
        '{{printf "%.2f %e %g %t %T %T %%" .Ratio .Big .Big .Flag .Name .Tags}}',
        "0.25 1.000000e+06 1e+06 true string []string %",
    ),
    ('{{printf "%d" .Name}}', "%!d(string=web)"),
    ('{{printf "%s %s" .Name}}', "web %!s(MISSING)"),
    ('{{printf "%s" .Name .Size}}', "web%!(EXTRA int=72940000)"),
    ("{{html .Text}}", "Hello &lt;World&gt; &amp; &#34;friends&#34;"),
    ('{{js "a\'b<"}}', "a\\'b\\u003C"),
    ('{{urlquery "a b&c"}}', "a+b%26c"),
    # define / template / block
    ('{{define "T"}}[{{.}}]{{end}}{{template "T" .Name}}{{template "T" 1}}', "[web][1]"),
    ('{{block "B" .Name}}<{{.}}>{{end}}', "<web>"),
]


@pytest.mark.parametrize(("text", "want"), CASES)
def test_render(text: str, want: str) -> None:
    assert render(text, DATA) == want


STRUCT_CASES: list[tuple[str, str]] = [
    ("{{.ID}} {{.Repository}}", "abc ubuntu"),
    ('{{.Label "x"}}', "label:x"),
    ("{{json .}}", '{"ID":"abc","Repository":"ubuntu"}'),
    ("{{.}}", "{abc ubuntu}"),
]


@pytest.mark.parametrize(("text", "want"), STRUCT_CASES)
def test_struct_fields_and_methods(text: str, want: str) -> None:
    assert render(text, Ctx("abc", "ubuntu")) == want


ERRORS: list[tuple[str, Any, str]] = [
    # execution errors: location is the node's byte column, context its text
    (
        "{{.Nope}}",
        Ctx("a", "b"),
        'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type '
        "*formatter.imageContext",
    ),
    (
        "{{.ID}} {{.Nope}}",
        Ctx("a", "b"),
        'template: :1:10: executing "" at <.Nope>: can\'t evaluate field Nope in type '
        "*formatter.imageContext",
    ),
    (
        "{{.ID.Nope}}",
        Ctx("a", "b"),
        # Go positions a chained field at its second element
        'template: :1:5: executing "" at <.ID.Nope>: can\'t evaluate field Nope in type string',
    ),
    (
        "{{upper .Size}}",
        DATA,
        'template: :1:8: executing "" at <.Size>: wrong type for value; expected string; got int',
    ),
    (
        "{{.Size | lower}}",
        DATA,
        'template: :1:10: executing "" at <lower>: wrong type for value; expected string; got int',
    ),
    (
        "{{upper .Name .Name}}",
        DATA,
        'template: :1:2: executing "" at <upper>: wrong number of args for upper: want 1 got 2',
    ),
    (
        "{{index .Tags 5}}",
        DATA,
        'template: :1:2: executing "" at <index .Tags 5>: error calling index: index out of range: 5',
    ),
    (
        '{{eq .Size "x"}}',
        DATA,
        'template: :1:2: executing "" at <eq .Size "x">: error calling eq: incompatible types for comparison',
    ),
    (
        "{{lt .Flag true}}",
        DATA,
        'template: :1:2: executing "" at <lt .Flag true>: error calling lt: invalid type for comparison',
    ),
    (
        "{{range .Name}}{{end}}",
        DATA,
        'template: :1:8: executing "" at <.Name>: range can\'t iterate over web',
    ),
    (
        '{{truncate .Name "x"}}',
        DATA,
        'template: :1:17: executing "" at <"x">: expected integer; found "x"',
    ),
    (
        "{{nil}}",
        DATA,
        'template: :1:2: executing "" at <nil>: nil is not a command',
    ),
    (
        '{{template "none"}}',
        DATA,
        'template: :1:11: executing "" at <{{template "none"}}>: template "none" not defined',
    ),
    (
        "line one\n{{.Config.Labels.x.y}}",
        {"Config": {"Labels": {"x": 5}}},
        'template: :2:9: executing "" at <.Config.Labels.x.y>: can\'t evaluate field y in type int',
    ),
    # parse errors: line only
    ("{{.Name", DATA, "template: :1: unclosed action"),
    ("{{nope .}}", DATA, 'template: :1: function "nope" not defined'),
    ("{{end}}", DATA, "template: :1: unexpected {{end}}"),
    ("{{else}}", DATA, "template: :1: unexpected {{else}}"),
    ("{{if .Flag}}x", DATA, "template: :1: unexpected EOF"),
    ("x\n\n{{$y}}", DATA, 'template: :3: undefined variable "$y"'),
    ("{{.Name @}}", DATA, 'template: :1: unexpected "@" in operand'),
    ("{{}}", DATA, "template: :1: missing value for command"),
    ("{{if}}{{end}}", DATA, "template: :1: missing value for if"),
    ('{{.Name | "x"}}', DATA, "template: :1: non executable command in pipeline stage 2"),
    ('{{"abc}}', DATA, "template: :1: unterminated quoted string"),
    ("{{.Na-me}}", DATA, "template: :1: bad character U+002D '-'"),
    ("{{3x}}", DATA, 'template: :1: bad number syntax: "3x"'),
    ("{{break}}", DATA, "template: :1: {{break}} outside {{range}}"),
    ("{{(.Name}}", DATA, "template: :1: unclosed left paren"),
    ("{{.Name)}}", DATA, "template: :1: unexpected right paren"),
    ("{{/* x }}", DATA, "template: :1: unclosed comment"),
    ("{{range $a, $b, $c := .Tags}}{{end}}", DATA, "template: :1: too many declarations in range"),
    ("{{range $a, 3}}{{end}}", DATA, "template: :1: range can only initialize variables"),
    ("{{$a, $b := 1}}", DATA, "template: :1: too many declarations in command"),
    ('{{"x".Foo}}', DATA, 'template: :1: unexpected . after term "\\"x\\""'),
]


@pytest.mark.parametrize(("text", "data", "message"), ERRORS)
def test_errors_are_worded_like_go(text: str, data: Any, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(text, data)
    assert str(info.value) == message


def test_missingkey_error_names_the_key() -> None:
    tmpl = Template("{{.Config.Nope}}", missingkey="error")
    with pytest.raises(TemplateError) as info:
        tmpl.execute(DATA)
    assert str(info.value) == (
        'template: :1:9: executing "" at <.Config.Nope>: map has no entry for key "Nope"'
    )
    # present keys with null values are not missing
    assert Template("{{.Config.Cmd}}", missingkey="error").execute(DATA) == "<no value>"


def test_partial_output_survives_an_error() -> None:
    out: list[str] = []
    with pytest.raises(TemplateError):
        Template("a{{.Name}}b{{upper 1}}c").execute_into(out, DATA)
    assert "".join(out) == "awebb"


def test_template_is_reusable_and_functions_can_be_replaced() -> None:
    from gantry.cli.template import HEADER_FUNCS

    tmpl = Template("{{upper .Name}}|{{json .Name}}")
    assert tmpl.execute({"Name": "a"}) == 'A|"a"'
    assert tmpl.execute({"Name": "Header"}, funcs=HEADER_FUNCS) == "Header|Header"
    assert tmpl.execute({"Name": "b"}) == 'B|"b"'


def test_go_json_matches_encoding_json() -> None:
    assert go_json({"b": 1, "a": [True, None, 1.5, "x\u2028<"]}) == (
        '{"b":1,"a":[true,null,1.5,"x\\u2028<"]}'
    )
    assert go_json(1e21) == "1e+21"
    assert go_json(1e20) == "100000000000000000000"
    assert go_json(1e-7) == "1e-7"
    assert go_json("\x01\n") == '"\\u0001\\n"'


def test_go_quote_and_sprintf_helpers() -> None:
    assert go_quote('a"b\\c\n\x00é') == '"a\\"b\\\\c\\n\\x00é"'
    assert go_sprintf("%5.1f|%-4d|%+d|%x", 3.14159, 7, 3, "hi") == "  3.1|7   |+3|6869"
    assert go_sprintf("%s") == "%!s(MISSING)"
    assert go_sprintf("%!") == "%!!(NOVERB)" or go_sprintf("100%") == "100%!(NOVERB)"


def test_truncate_cuts_characters_not_bytes() -> None:
    # docker slices bytes and can print half a rune; gantry keeps the text valid
    assert render("{{truncate .D 2}}", {"D": "宽字符"}) == "宽字"


def test_deep_template_recursion_is_an_error_not_a_crash() -> None:
    with pytest.raises(TemplateError) as info:
        render('{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}', DATA)
    assert "exceeded maximum template depth" in str(info.value)
