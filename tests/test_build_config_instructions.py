"""Metadata-only Dockerfile instructions: the image config and history BuildKit writes.

Each build is read back as the raw config JSON (what ``inspect`` shows) so the field
names, the nanosecond durations and the omitted zero values are checked exactly. The
expected ``created_by`` strings follow BuildKit's dockerfile2llb (``commitToHistory``
with ``fmt.Sprintf`` of Go values: ``%q`` of a ``*HealthcheckConfig`` prints
``&{[...] "5s" ... '\\x03'}``, ``%v`` of a slice prints ``[a b]``, of a port set
``map[53/udp:{} 80/tcp:{}]``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gantry.build.builder import BuildOptions, build
from gantry.store import Image, Store
from test_build_support import add_busybox, need_root

COMMENT = "buildkit.dockerfile.v0"


@pytest.fixture
def store(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_root()
    s = Store(root)
    add_busybox(s, tmp_path)
    yield s
    s.close()


def built(store: Store, ctx: Path, dockerfile: str, tag: str = "cfg:1") -> Image:
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return build(store, BuildOptions(context=ctx, tags=[tag])).image


def raw_config(store: Store, image: Image) -> dict[str, Any]:
    cfg: dict[str, Any] = json.loads(store.config_bytes(image))
    return cfg


def new_history(store: Store, image: Image) -> list[tuple[str, bool]]:
    """(created_by, empty_layer) of the rows this build added (the busybox base has two)."""
    rows = raw_config(store, image)["history"][2:]
    for row in rows:
        assert row.get("comment") == COMMENT, row
    return [(row["created_by"], bool(row.get("empty_layer", False))) for row in rows]


def file_in(store: Store, image: Image, path: str) -> Path:
    layers = store.layers(image)
    for d in store.lowerdirs(layers[-1].chain_id):
        p = d / path.lstrip("/")
        if os.path.lexists(p):
            return p
    raise AssertionError(f"{path} not in image")


def test_healthcheck_all_options_config(store: Store, tmp_path: Path) -> None:
    img = built(
        store,
        tmp_path / "hc",
        "FROM busybox\n"
        "HEALTHCHECK --interval=5s --timeout=3s --start-period=2s --start-interval=1s"
        " --retries=4 CMD wget -q -O- http://localhost/ || exit 1\n",
    )
    hc = raw_config(store, img)["config"]["Healthcheck"]
    assert hc == {
        "Test": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"],
        "Interval": 5_000_000_000,
        "Timeout": 3_000_000_000,
        "StartPeriod": 2_000_000_000,
        "StartInterval": 1_000_000_000,
        "Retries": 4,
    }
    assert new_history(store, img)[-1][1] is True  # no layer of its own


def test_healthcheck_exec_form_and_none(store: Store, tmp_path: Path) -> None:
    img = built(
        store, tmp_path / "hc", 'FROM busybox\nHEALTHCHECK --interval=1m30s CMD ["true", "-x"]\n'
    )
    hc = raw_config(store, img)["config"]["Healthcheck"]
    # zero durations and retries are omitted (Go's omitempty), not written as 0
    assert hc == {"Test": ["CMD", "true", "-x"], "Interval": 90_000_000_000}
    img2 = built(store, tmp_path / "none", "FROM cfg:1\nHEALTHCHECK NONE\n", tag="cfg:2")
    assert raw_config(store, img2)["config"]["Healthcheck"] == {"Test": ["NONE"]}


def test_healthcheck_history_as_buildkit_writes_it(store: Store, tmp_path: Path) -> None:
    img = built(
        store,
        tmp_path / "hc",
        "FROM busybox\n"
        "HEALTHCHECK --interval=5s --timeout=3s --start-period=2s --start-interval=1s"
        " --retries=3 CMD wget -q -O- http://localhost/ || exit 1\n"
        "HEALTHCHECK NONE\n",
    )
    assert new_history(store, img) == [
        (
            'HEALTHCHECK &{["CMD-SHELL" "wget -q -O- http://localhost/ || exit 1"]'
            ' "5s" "3s" "2s" "1s" \'\\x03\'}',
            True,
        ),
        ('HEALTHCHECK &{["NONE"] "0s" "0s" "0s" "0s" \'\\x00\'}', True),
    ]


def test_stopsignal_maintainer_volume_expose(store: Store, tmp_path: Path) -> None:
    img = built(
        store,
        tmp_path / "meta",
        "FROM busybox\n"
        "MAINTAINER Jane Doe <jane@example.com>\n"
        "STOPSIGNAL SIGKILL\n"
        "VOLUME /data /logs\n"
        'VOLUME ["/json"]\n'
        "EXPOSE 80 53/udp\n"
        "EXPOSE 8080/tcp\n",
    )
    cfg = raw_config(store, img)
    assert cfg["author"] == "Jane Doe <jane@example.com>"
    c = cfg["config"]
    assert c["StopSignal"] == "SIGKILL"
    assert c["Volumes"] == {"/data": {}, "/logs": {}, "/json": {}}
    assert c["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}, "8080/tcp": {}}
    assert new_history(store, img) == [
        ("MAINTAINER Jane Doe <jane@example.com>", True),
        ("STOPSIGNAL SIGKILL", True),
        ("VOLUME [/data /logs]", True),
        ("VOLUME [/json]", True),
        ("EXPOSE map[53/udp:{} 80/tcp:{}]", True),
        ("EXPOSE map[8080/tcp:{}]", True),
    ]
    assert len(cfg["rootfs"]["diff_ids"]) == 1  # metadata adds no layer


def test_shell_changes_later_run_and_shell_form_cmd(store: Store, tmp_path: Path) -> None:
    img = built(
        store,
        tmp_path / "shell",
        "FROM busybox\n"
        'SHELL ["/bin/busybox", "env", "MARK=via-shell", "/bin/sh", "-c"]\n'
        "RUN echo $MARK > /mark\n"
        "CMD echo $MARK\n",
    )
    assert file_in(store, img, "/mark").read_text() == "via-shell\n"
    c = raw_config(store, img)["config"]
    assert c["Shell"] == ["/bin/busybox", "env", "MARK=via-shell", "/bin/sh", "-c"]
    assert c["Cmd"] == ["/bin/busybox", "env", "MARK=via-shell", "/bin/sh", "-c", "echo $MARK"]
    assert new_history(store, img) == [
        ("SHELL [/bin/busybox env MARK=via-shell /bin/sh -c]", True),
        ("RUN /bin/busybox env MARK=via-shell /bin/sh -c echo $MARK > /mark # buildkit", False),
        ('CMD ["/bin/busybox" "env" "MARK=via-shell" "/bin/sh" "-c" "echo $MARK"]', True),
    ]


def test_args_escaped_follows_buildkit_on_linux(store: Store, tmp_path: Path) -> None:
    # BuildKit's dispatchCmd sets ArgsEscaped for every CMD (both forms, any OS);
    # dispatchEntrypoint never sets it.
    shell_cmd = built(store, tmp_path / "a", "FROM busybox\nCMD echo hi\n", tag="ae:1")
    c = raw_config(store, shell_cmd)["config"]
    assert c["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert c["ArgsEscaped"] is True
    exec_cmd = built(store, tmp_path / "b", 'FROM busybox\nCMD ["echo", "hi"]\n', tag="ae:2")
    assert raw_config(store, exec_cmd)["config"]["ArgsEscaped"] is True
    ep = built(store, tmp_path / "c", "FROM busybox\nENTRYPOINT echo hi\n", tag="ae:3")
    c = raw_config(store, ep)["config"]
    assert c["Entrypoint"] == ["/bin/sh", "-c", "echo hi"]
    assert "ArgsEscaped" not in c
    assert new_history(store, ep) == [('ENTRYPOINT ["/bin/sh" "-c" "echo hi"]', True)]


def test_entrypoint_exec_form_resets_base_cmd(store: Store, tmp_path: Path) -> None:
    img = built(store, tmp_path / "ep", 'FROM busybox\nENTRYPOINT ["/bin/echo", "x"]\n')
    c = raw_config(store, img)["config"]
    assert c["Entrypoint"] == ["/bin/echo", "x"]
    assert "Cmd" not in c  # the base's CMD ["sh"] is dropped, as BuildKit does
    assert new_history(store, img) == [('ENTRYPOINT ["/bin/echo" "x"]', True)]
    # a CMD in the same stage survives, whichever comes first
    both = built(
        store,
        tmp_path / "both",
        'FROM busybox\nCMD ["--help"]\nENTRYPOINT ["/bin/echo"]\n',
        tag="cfg:both",
    )
    c = raw_config(store, both)["config"]
    assert (c["Entrypoint"], c["Cmd"]) == (["/bin/echo"], ["--help"])


def test_label_overrides_base_label(store: Store, tmp_path: Path) -> None:
    built(store, tmp_path / "base", 'FROM busybox\nLABEL a=base b="kept one"\n', tag="lb:base")
    child = built(
        store, tmp_path / "child", 'FROM lb:base\nLABEL a=child "c d"="e f"\n', tag="lb:child"
    )
    assert raw_config(store, child)["config"]["Labels"] == {
        "a": "child",
        "b": "kept one",
        "c d": "e f",
    }
    hist = raw_config(store, child)["history"]
    # BuildKit writes the expanded key=value pairs: quotes are gone
    assert hist[-2]["created_by"] == "LABEL a=base b=kept one"
    assert (hist[-1]["created_by"], hist[-1]["empty_layer"]) == ("LABEL a=child c d=e f", True)


def test_expose_ranges_and_variables(store: Store, tmp_path: Path) -> None:
    img = built(
        store,
        tmp_path / "ports",
        "FROM busybox\nENV DNS=53\nEXPOSE 7000-7002/udp ${DNS}/udp 9000\n",
    )
    assert raw_config(store, img)["config"]["ExposedPorts"] == {
        "53/udp": {},
        "7000/udp": {},
        "7001/udp": {},
        "7002/udp": {},
        "9000/tcp": {},
    }
    assert new_history(store, img)[-1] == (
        "EXPOSE map[53/udp:{} 7000/udp:{} 7001/udp:{} 7002/udp:{} 9000/tcp:{}]",
        True,
    )


def test_maintainer_sets_author_not_history_author(store: Store, tmp_path: Path) -> None:
    img = built(store, tmp_path / "m", "FROM busybox\nMAINTAINER someone\nSTOPSIGNAL 9\n")
    cfg = raw_config(store, img)
    assert cfg["author"] == "someone"
    assert cfg["config"]["StopSignal"] == "9"  # numbers are kept as written
    assert all("author" not in row for row in cfg["history"])


def test_stopsignal_unknown_signal_is_an_error(store: Store, tmp_path: Path) -> None:
    from gantry.errors import GantryError

    try:
        built(store, tmp_path / "bad", "FROM busybox\nSTOPSIGNAL SIGFOO\n")
    except GantryError as e:
        assert "invalid signal: SIGFOO" in str(e)  # moby/sys signal.ParseSignal's words
    else:
        raise AssertionError("STOPSIGNAL SIGFOO was accepted")


def test_volume_is_config_only_during_the_build(store: Store, tmp_path: Path) -> None:
    # BuildKit attaches no volume while building: the directory is not created, and
    # what later steps write there is kept in the image (the classic builder lost it)
    img = built(
        store,
        tmp_path / "vol",
        "FROM busybox\n"
        "VOLUME /data\n"
        "RUN test -e /data && echo exists > /probe || echo absent > /probe\n"
        "RUN mkdir -p /data && echo kept > /data/f\n"
        "RUN cat /data/f > /seen\n",
    )
    assert file_in(store, img, "/probe").read_text() == "absent\n"
    assert file_in(store, img, "/seen").read_text() == "kept\n"
    assert file_in(store, img, "/data/f").read_text() == "kept\n"


def test_shell_applies_to_shell_forms_only(store: Store, tmp_path: Path) -> None:
    img = built(
        store,
        tmp_path / "forms",
        "FROM busybox\n"
        'SHELL ["/bin/sh", "-xc"]\n'
        "ENTRYPOINT echo hi\n"
        'RUN ["/bin/sh", "-c", "echo $0 > /exec-form"]\n',
    )
    assert raw_config(store, img)["config"]["Entrypoint"] == ["/bin/sh", "-xc", "echo hi"]
    assert file_in(store, img, "/exec-form").read_text() == "/bin/sh\n"
    assert new_history(store, img)[1:] == [
        ('ENTRYPOINT ["/bin/sh" "-xc" "echo hi"]', True),
        ("RUN /bin/sh -c echo $0 > /exec-form # buildkit", False),
    ]


def test_args_escaped_is_inherited_by_an_entrypoint_child(store: Store, tmp_path: Path) -> None:
    built(store, tmp_path / "base", "FROM busybox\nCMD echo base\n", tag="esc:base")
    child = built(store, tmp_path / "child", 'FROM esc:base\nENTRYPOINT ["/bin/echo"]\n')
    c = raw_config(store, child)["config"]
    # BuildKit never clears ArgsEscaped; the base's CMD is dropped by the ENTRYPOINT
    assert c["ArgsEscaped"] is True and "Cmd" not in c


def test_stopsignal_names_and_numbers_moby_accepts() -> None:
    from gantry.build.signals import parse_signal
    from gantry.errors import BuildError

    assert parse_signal("SIGTERM") == parse_signal("term") == parse_signal("15") == 15
    assert parse_signal("sigrtmin+3") == 37 and parse_signal("RTMAX-1") == 63
    assert parse_signal("SIGCLD") == 17 and parse_signal("POLL") == 29
    assert parse_signal("+9") == 9 and parse_signal("-3") == -3  # Go's Atoi takes a sign
    for bad in ("0", "SIG", "SIGFOO", "RTMIN+16", " 9", "9 ", "", "١"):
        with pytest.raises(BuildError, match="invalid signal: "):
            parse_signal(bad)


def test_healthcheck_retries_quoted_as_go_quotes_a_rune() -> None:
    from gantry.build.history import go_quote_rune

    assert [go_quote_rune(n) for n in (0, 3, 9, 32, 39, 65, 92, 127, 0x2028, 0x1F600)] == [
        "'\\x00'",
        "'\\x03'",
        "'\\t'",
        "' '",
        "'\\''",
        "'A'",
        "'\\\\'",
        "'\\x7f'",
        "'\\u2028'",
        "'\U0001f600'",
    ]
    assert go_quote_rune(-1) == go_quote_rune(0x110000) == go_quote_rune(0xD800) == "'\ufffd'"
