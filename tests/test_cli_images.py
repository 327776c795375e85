"""The image verbs driven through the real CLI over a real store.

Images are built with the store test helpers (real gzip'd layer tars, configs and
manifests written to the content store, recorded with ``Store.add_image``). Most
cases run the click group in-process; the exit-code and stderr cases run
``python -m gantry`` as a subprocess.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gantry.cli.images import ellipsis
from gantry.cli.main import cli
from gantry.store import Image, Store
from test_store_support import layer, make_image

BASE = layer({"bin/sh": b"#" * 5000})
APP = layer({"app/main.py": b"print('hi')\n" * 100})
OTHER = layer({"x": b"y"})

HISTORY = [
    {
        "created_by": "/bin/sh -c #(nop) ADD file:0123456789abcdef in / ",
        "created": "2024-01-01T00:00:00Z",
    },
    {
        "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
        "created": "2024-01-01T00:00:00Z",
        "empty_layer": True,
    },
]


@dataclass
class World:
    root: Path
    base: Image
    app: Image
    dangling: Image


@pytest.fixture
def world(root: Path) -> Iterator[World]:
    with Store(root) as s:
        base = make_image(
            s,
            [BASE],
            tags=["busybox:1.36", "busybox:latest"],
            labels={"org.example.team": "core"},
            created="2024-01-01T00:00:00Z",
            history=HISTORY,
        )
        app = make_image(
            s,
            [BASE, APP],
            tags=["localhost:5000/team/app:v1"],
            parent=base,
            created="2024-06-01T00:00:00Z",
        )
        dangling = make_image(s, [OTHER], salt="dangling", created="2024-03-01T00:00:00Z")
        s.add_repo_digest(base, "busybox")
    yield World(root, base, app, dangling)


def gantry(world: World, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--root", str(world.root), *args], input=stdin)


def out(world: World, *args: str) -> str:
    r = gantry(world, *args)
    assert r.exit_code == 0, (r.output, r.exception)
    return r.stdout


def run(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gantry", "--root", str(world.root), *args],
        capture_output=True,
        text=True,
    )


def ago(created: str) -> str:
    from datetime import datetime

    from gantry.cli.units import human_duration

    ts = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    return human_duration(time.time() - ts) + " ago"


# ------------------------------------------------------------------------- images


def test_images_default_table(world: World) -> None:
    b, a, d = world.base.short_id, world.app.short_id, world.dangling.short_id
    since_a, since_d, since_b = (
        ago("2024-06-01T00:00:00Z"),
        ago("2024-03-01T00:00:00Z"),
        ago("2024-01-01T00:00:00Z"),
    )
    rows = [
        ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"),
        ("localhost:5000/team/app", "v1", a, since_a, "6.2kB"),
        ("<none>", "<none>", d, since_d, "1B"),
        ("busybox", "1.36", b, since_b, "5kB"),
        ("busybox", "latest", b, since_b, "5kB"),
    ]
    widths = [max(len(r[i]) for r in rows) + 3 for i in range(4)]
    widths = [max(w, 10) for w in widths]
    want = "".join(
        "".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:4])) + r[4] + "\n" for r in rows
    )
    assert out(world, "images") == want
    assert out(world, "image", "ls") == want
    assert out(world, "image", "list") == want


def test_images_quiet_no_trunc_and_digests(world: World) -> None:
    assert out(world, "images", "-q").split() == [
        world.app.short_id,
        world.dangling.short_id,
        world.base.short_id,
        world.base.short_id,
    ]
    full = out(world, "images", "--no-trunc", "--format", "{{.ID}}").split()
    assert full[0] == str(world.app.id)
    lines = out(world, "images", "--digests").splitlines()
    assert re.split(r"\s{3,}", lines[0]) == [
        "REPOSITORY",
        "TAG",
        "DIGEST",
        "IMAGE ID",
        "CREATED",
        "SIZE",
    ]
    busybox = [line for line in lines if line.startswith("busybox")]
    assert all(str(world.base.manifest_digest) in line for line in busybox)
    assert "<none>" in [c for c in re.split(r"\s{3,}", lines[1])]


def test_images_format_fields_json_and_table(world: World) -> None:
    got = out(world, "images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}} {{.Digest}}")
    assert got.splitlines() == [
        "localhost:5000/team/app:v1 6.2kB <none>",
        "<none>:<none> 1B <none>",
        f"busybox:1.36 5kB {world.base.manifest_digest}",
        f"busybox:latest 5kB {world.base.manifest_digest}",
    ]
    docs = [json.loads(line) for line in out(world, "images", "--format", "json").splitlines()]
    assert list(docs[0]) == sorted(docs[0])  # docker marshals a map: sorted keys
    assert docs[0]["Repository"] == "localhost:5000/team/app"
    assert docs[0]["Containers"] == "N/A" and docs[0]["VirtualSize"] == "6.2kB"
    assert out(world, "images", "--format", "{{json .}}") == out(
        world, "images", "--format", "json"
    )
    table = out(world, "images", "--format", "table {{.ID}}\t{{.Tag}}", "busybox")
    assert (
        table
        == f"IMAGE ID       TAG\n{world.base.short_id}   1.36\n{world.base.short_id}   latest\n"
    )
    created_at = out(world, "images", "--format", "{{.CreatedAt}}", "busybox:1.36").strip()
    assert re.fullmatch(r"2024-01-0[12] \d\d:00:00 [+-]\d{4} \S+", created_at)


def test_images_filters(world: World) -> None:
    def ids(*args: str) -> list[str]:
        return out(world, "images", "--format", "{{.ID}} {{.Tag}}", *args).splitlines()

    b, a, d = world.base.short_id, world.app.short_id, world.dangling.short_id
    assert ids("-f", "dangling=true") == [f"{d} <none>"]
    assert ids("-f", "dangling=false") == [f"{a} v1", f"{b} 1.36", f"{b} latest"]
    assert ids("-f", "label=org.example.team") == [f"{b} 1.36", f"{b} latest"]
    assert ids("-f", "label=org.example.team=other") == []
    assert ids("-f", "label!=org.example.team") == [f"{a} v1", f"{d} <none>"]
    assert ids("-f", "before=localhost:5000/team/app:v1") == [
        f"{d} <none>",
        f"{b} 1.36",
        f"{b} latest",
    ]
    assert ids("-f", "since=busybox") == [f"{a} v1", f"{d} <none>"]
    assert ids("-f", "until=2024-02-01T00:00:00Z") == [f"{b} 1.36", f"{b} latest"]
    assert ids("-f", "reference=busybox:1.*") == [f"{b} 1.36"]
    assert ids("-f", "reference=*/team/*") == [f"{a} v1"]
    assert ids("-f", "reference=busybox") == [f"{b} 1.36", f"{b} latest"]
    assert ids("busybox:latest") == [f"{b} latest"]
    assert ids("-f", "reference=nothing*") == []
    assert ids("-f", "reference=b[a-z]sybox:lat*") == [f"{b} latest"]
    assert ids("-f", "reference=localhost:5000/*/app") == [f"{a} v1"]  # the name, tag dropped
    # several until= values: the earliest wins (moby lowers one "before" bound)
    assert ids("-f", "until=2024-07-01T00:00:00Z", "-f", "until=2024-02-01T00:00:00Z") == [
        f"{b} 1.36",
        f"{b} latest",
    ]


def test_images_hides_intermediate_unless_all(world: World) -> None:
    with Store(world.root) as s:
        s.remove("busybox:1.36")
        s.remove("busybox:latest")  # the base is now an untagged parent of app
    plain = out(world, "images", "--format", "{{.ID}}").split()
    assert world.base.short_id not in plain
    assert world.base.short_id in out(world, "images", "-a", "--format", "{{.ID}}").split()


def test_images_errors(world: World) -> None:
    p = run(world, "images", "--format", "{{.Nope}}")
    assert p.returncode == 1
    assert p.stderr == (
        'Error: template parsing error: template: :1:2: executing "" at <.Nope>: '
        "can't evaluate field Nope in type *formatter.imageContext\n"
    )
    p = run(world, "images", "-f", "bogus")
    assert p.returncode == 1
    assert "bad format of filter (expected name=value)" in p.stderr
    p = run(world, "images", "-f", "color=blue")
    assert p.stderr == "Error: invalid filter 'color'\n"
    p = run(world, "images", "-f", "dangling=maybe")
    assert p.stderr == "Error: Invalid filter 'dangling=maybe'\n"
    p = run(world, "images", "-f", "reference=busy[box")
    assert (p.returncode, p.stderr) == (1, "Error: syntax error in pattern: busy[box\n")
    p = run(world, "images", "-f", "until=yesterday")
    assert p.returncode == 1
    assert p.stderr == (
        'Error: failed to parse value as time or duration: invalid seconds "yesterday": '
        "invalid syntax\n"
    )


def test_empty_store_prints_only_the_header(root: Path) -> None:
    r = CliRunner().invoke(cli, ["--root", str(root), "images"])
    assert r.exit_code == 0
    assert r.stdout == "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"


# --------------------------------------------------------------------- tag and rmi


def test_tag_by_name_id_prefix_and_digest(world: World) -> None:
    assert out(world, "tag", "busybox", "mybox:1") == ""
    assert out(world, "tag", world.base.id.hex[:8], "mybox:2") == ""
    assert (
        out(world, "image", "tag", f"busybox@{world.base.manifest_digest}", "reg.example/x/y") == ""
    )
    with Store(world.root) as s:
        assert set(s.image(world.base.id).familiar_tags) >= {
            "mybox:1",
            "mybox:2",
            "reg.example/x/y:latest",
        }
    p = run(world, "tag", "nope", "x")
    assert (p.returncode, p.stderr) == (1, "Error: No such image: nope:latest\n")
    p = run(world, "tag", "busybox", "Bad:Name")
    assert p.returncode == 1 and "invalid reference format" in p.stderr


def test_rmi_untags_then_deletes(world: World) -> None:
    assert out(world, "rmi", "busybox:1.36") == "Untagged: busybox:1.36\n"
    got = out(world, "image", "rm", "localhost:5000/team/app:v1")
    lines = got.splitlines()
    assert lines[0] == "Untagged: localhost:5000/team/app:v1"
    assert f"Deleted: {world.app.id}" in lines
    assert all(re.fullmatch(r"(Untagged|Deleted): \S+", line) for line in lines)


def test_rmi_errors_continue_and_fail(world: World) -> None:
    p = run(world, "rmi", "nope", "busybox:1.36", world.base.id.hex[:12])
    assert p.returncode == 1
    assert p.stdout == "Untagged: busybox:1.36\n"
    errors = p.stderr.splitlines()
    assert errors[0] == "Error: No such image: nope:latest"
    assert errors[1].startswith("Error: conflict: unable to delete")
    assert "image has dependent child images" in errors[1]


def test_rmi_no_prune_keeps_parent(world: World) -> None:
    # untagging the last tag of a repository drops its digest references too
    assert out(world, "rmi", "busybox:1.36", "busybox:latest").splitlines() == [
        "Untagged: busybox:1.36",
        "Untagged: busybox:latest",
        f"Untagged: busybox@{world.base.manifest_digest}",
    ]
    got = out(world, "rmi", "--no-prune", "localhost:5000/team/app:v1")
    assert f"Deleted: {world.base.id}" not in got
    with Store(world.root) as s:
        assert s.image(world.base.id).dangling


# ------------------------------------------------------------------------ prune


def test_prune_prompts_and_reports(world: World) -> None:
    r = gantry(world, "image", "prune", stdin="n\n")
    assert r.exit_code == 0
    assert r.stdout == (
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    )
    r = gantry(world, "image", "prune", stdin="y\n")
    assert r.exit_code == 0
    _, _, tail = r.stdout.partition("[y/N] ")
    lines = tail.splitlines()
    assert lines[0] == "Deleted Images:"
    assert f"deleted: {world.dangling.id}" in lines
    assert lines[-2] == ""
    assert re.fullmatch(r"Total reclaimed space: \d+(\.\d+)?k?B", lines[-1])
    # nothing left to prune
    assert out(world, "image", "prune", "-f") == "Total reclaimed space: 0B\n"


def test_prune_all_with_filters(world: World) -> None:
    r = gantry(world, "image", "prune", "-a", stdin="\n")
    assert "without at least one container associated to them" in r.stdout
    got = out(world, "image", "prune", "-a", "-f", "--filter", "label=org.example.team=nobody")
    assert got == "Total reclaimed space: 0B\n"
    got = out(world, "image", "prune", "-a", "-f", "--filter", "until=2024-05-01T00:00:00Z")
    assert f"deleted: {world.dangling.id}" in got
    assert f"deleted: {world.app.id}" not in got  # created after the until time
    got = out(world, "image", "prune", "-a", "-f")
    assert "untagged: localhost:5000/team/app:v1" in got
    assert f"deleted: {world.base.id}" in got
    with Store(world.root) as s:
        assert s.images() == []


# ---------------------------------------------------------------------- inspect


def test_prune_all_leaves_parents_of_kept_images_alone(world: World) -> None:
    got = out(world, "image", "prune", "-a", "-f", "--filter", "until=2024-02-01T00:00:00Z")
    assert "untagged: busybox:1.36" not in got


def test_inspect_json_shape(world: World) -> None:
    docs = json.loads(out(world, "inspect", "busybox"))
    assert len(docs) == 1
    doc = docs[0]
    assert list(doc) == [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "DockerVersion",
        "Author",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "GraphDriver",
        "RootFS",
        "Metadata",
    ]
    assert doc["Id"] == str(world.base.id)
    assert doc["RepoTags"] == ["busybox:1.36", "busybox:latest"]
    assert doc["RepoDigests"] == [f"busybox@{world.base.manifest_digest}"]
    assert doc["Created"] == "2024-01-01T00:00:00Z"
    assert doc["Config"]["Labels"] == {"org.example.team": "core"}
    assert doc["RootFS"] == {"Type": "layers", "Layers": [BASE.diff_id]}
    assert doc["Size"] == 5000
    assert out(world, "image", "inspect", "busybox").startswith('[\n    {\n        "Id": ')
    app = json.loads(out(world, "image", "inspect", "localhost:5000/team/app:v1"))[0]
    assert app["Parent"] == str(world.base.id)


def test_inspect_graph_driver_last_tag_time_and_comment(world: World) -> None:
    from datetime import datetime

    app = json.loads(out(world, "image", "inspect", "localhost:5000/team/app:v1"))[0]
    assert app["GraphDriver"] == {"Data": None, "Name": "overlayfs"}  # nothing unpacked yet
    with Store(world.root) as s:
        layers = s.layers(world.app)
        paths = [str(s.snapshot(str(layer.chain_id))) for layer in layers]
    app = json.loads(out(world, "image", "inspect", "localhost:5000/team/app:v1"))[0]
    assert app["GraphDriver"]["Data"] == {"LowerDir": paths[0], "UpperDir": paths[1]}
    assert list(app["GraphDriver"]["Data"]) == ["LowerDir", "UpperDir"]  # Go's sorted keys

    before = time.time()
    out(world, "tag", "busybox:1.36", "retagged:1")
    tagged = json.loads(out(world, "image", "inspect", "retagged:1"))[0]
    stamp = tagged["Metadata"]["LastTagTime"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)", stamp)
    got = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    assert before - 1 <= got <= time.time() + 1
    # the dangling image was never tagged: Go's zero time
    dangling = json.loads(out(world, "image", "inspect", str(world.dangling.id)))[0]
    assert dangling["Metadata"] == {"LastTagTime": "0001-01-01T00:00:00Z"}
    # Comment: the last history entry's when the config has none
    with Store(world.root) as s:
        img = make_image(
            s,
            [OTHER],
            salt="commented",
            history=[{"created_by": "x", "comment": "buildkit.dockerfile.v0"}],
            tags=["commented:1"],
        )
    assert json.loads(out(world, "image", "inspect", str(img.id)))[0]["Comment"] == (
        "buildkit.dockerfile.v0"
    )


def test_inspect_format(world: World) -> None:
    got = out(
        world,
        "inspect",
        "-f",
        "{{.Id}}|{{json .RootFS}}|{{.Config.Env}}|{{.Config.Labels.nope}}|{{index .RepoTags 0}}",
        "busybox",
        world.app.id.hex[:10],
    )
    first, second = got.splitlines()
    assert first == (
        f'{world.base.id}|{{"Type":"layers","Layers":["{BASE.diff_id}"]}}|'
        "[PATH=/bin SALT=]|<no value>|busybox:1.36"
    )
    assert second.startswith(f"{world.app.id}|")
    assert out(world, "inspect", "--format", "{{json .Config.Labels}}", "busybox") == (
        '{"org.example.team":"core"}\n'
    )


def test_inspect_errors(world: World) -> None:
    p = run(world, "inspect", "-f", "{{.Nope}}", "busybox")
    assert p.returncode == 1
    assert p.stderr == (
        'Error: template parsing error: template: :1:2: executing "" at <.Nope>: '
        'map has no entry for key "Nope"\n'
    )
    p = run(world, "image", "inspect", "busybox", "nope")
    assert p.returncode == 1
    assert json.loads(p.stdout)[0]["Id"] == str(world.base.id)
    assert p.stderr == "Error: No such image: nope:latest\n"
    # the top-level inspect looks for any object, as docker's does
    p = run(world, "inspect", "busybox", "nope")
    assert p.returncode == 1
    assert json.loads(p.stdout)[0]["Id"] == str(world.base.id)
    assert p.stderr == "Error: No such object: nope\n"


# ---------------------------------------------------------------------- history


def test_history_table(world: World) -> None:
    since = ago("2024-01-01T00:00:00Z")
    b = world.base.short_id
    assert out(world, "history", "busybox") == (
        f"IMAGE          CREATED{' ' * (len(since) - 4)}CREATED BY                                      SIZE      COMMENT\n"
        f'{b}   {since}   /bin/sh -c #(nop)  CMD ["sh"]                   0B        \n'
        f"<missing>      {since}   /bin/sh -c #(nop) ADD file:0123456789abcdef …   5kB       \n"
    )


def test_history_flags(world: World) -> None:
    got = out(world, "history", "--no-trunc", "-H=false", "busybox")
    lines = got.splitlines()
    assert re.split(r"\s{3,}", lines[0]) == ["IMAGE", "CREATED AT", "CREATED BY", "SIZE", "COMMENT"]
    assert lines[1].startswith(f"{world.base.id}   2024-01-01T00:00:00Z   /bin/sh -c #(nop)  CMD")
    assert "ADD file:0123456789abcdef in /    5000" in lines[2]
    assert out(world, "history", "-q", "busybox").split() == [world.base.short_id, "<missing>"]
    assert out(world, "history", "--human=false", "--format", "{{.Size}}", "busybox").split() == [
        "0",
        "5000",
    ]
    docs = [
        json.loads(x) for x in out(world, "history", "--format", "json", "busybox").splitlines()
    ]
    assert sorted(docs[0]) == ["Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size"]
    p = run(world, "history", "nope")
    assert (p.returncode, p.stderr) == (1, "Error: No such image: nope:latest\n")


def test_history_of_child_fills_ids_along_parents(world: World) -> None:
    ids = out(world, "history", "--format", "{{.ID}}", "localhost:5000/team/app:v1").split()
    assert ids == [world.app.short_id, world.base.short_id]


# ------------------------------------------------------------------------- system


def test_system_df(world: World) -> None:
    got = out(world, "system", "df")
    lines = got.splitlines()
    assert re.split(r"\s{3,}", lines[0]) == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert re.split(r"\s{3,}", lines[1]) == ["Images", "3", "0", "6.201kB", "6.201kB (100%)"]
    assert re.split(r"\s{3,}", lines[2].strip()) == ["Containers", "0", "0", "0B", "0B"]
    assert [
        json.loads(x)["Type"] for x in out(world, "system", "df", "--format", "json").splitlines()
    ] == [
        "Images",
        "Containers",
        "Local Volumes",
        "Build Cache",
    ]


def test_system_df_verbose(world: World) -> None:
    got = out(world, "system", "df", "-v")
    assert got.startswith("Images space usage:\n\nREPOSITORY")
    sections = [
        "\nContainers space usage:\n\nCONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE      CREATED   STATUS    NAMES\n",
        "\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n",
        "\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n",
    ]
    for s in sections:
        assert s in got
    rows = {
        re.split(r"\s{3,}", line)[0]: re.split(r"\s{3,}", line) for line in got.splitlines()[3:6]
    }
    # busybox's layer is shared with app; app's own layer is unique to it
    assert rows["busybox"][5:8] == ["5kB", "0B", "0"]
    assert rows["localhost:5000/team/app"][5:8] == ["5kB", "1.2kB", "0"]


def test_system_df_counts_volumes_and_build_cache(world: World) -> None:
    from gantry.containers.volumes import Volumes

    vol = Volumes(world.root).create("data")
    (vol.mountpoint / "f").write_bytes(b"v" * 2000)
    with Store(world.root) as s:
        s.put_cache_record("k" * 64, kind="regular", description="RUN make", size=3000)
        s.put_cache_record("j" * 64, kind="exec.cachemount", description="apt cache", size=500)
    lines = out(world, "system", "df").splitlines()
    assert re.split(r"\s{3,}", lines[3].strip()) == ["Local Volumes", "1", "0", "2kB", "2kB (100%)"]
    assert re.split(r"\s{3,}", lines[4].strip()) == ["Build Cache", "2", "0", "3.5kB", "3.5kB"]
    got = out(world, "system", "df", "-v")
    assert "\nVOLUME NAME   LINKS     SIZE\ndata          0         2kB\n" in got
    assert "\nBuild cache usage: 3.5kB\n" in got
    cache = got.split("CACHE ID")[1].splitlines()[1:]
    assert sorted(re.split(r"\s{3,}", r)[:3] for r in cache) == [
        ["jjjjjjjjjjjj", "exec.cachemount", "500B"],
        ["kkkkkkkkkkkk", "regular", "3kB"],
    ]


def test_system_check(world: World) -> None:
    assert out(world, "system", "check") == "No problems found\n"
    blob = world.root / "content" / "blobs" / "sha256" / BASE.digest.split(":")[1]
    blob.chmod(0o644)
    blob.write_bytes(b"corrupted")
    p = run(world, "system", "check")
    assert p.returncode == 1
    assert f"corrupt-blob: blob {BASE.digest}: content does not match its digest" in p.stdout
    assert p.stderr.startswith("Error: ") and "problem" in p.stderr
    assert run(world, "system", "check", "--quick").returncode == 0


# ------------------------------------------------------------------------ helpers


def test_ellipsis_counts_columns() -> None:
    assert ellipsis("abcdef", 4) == "abc…"
    assert ellipsis("abc", 4) == "abc"
    assert ellipsis("你好世界", 5) == "你好…"
    assert ellipsis("x", 0) == ""
