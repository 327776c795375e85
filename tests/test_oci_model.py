"""gantry.oci models: media types, platforms, descriptors, manifests, configs, chain IDs."""

from __future__ import annotations

import hashlib
import json
import platform as pyplatform
from typing import Any

import pytest

from gantry.digest import Digest, of_bytes
from gantry.errors import InvalidManifest, UsageError
from gantry.oci import (
    EMPTY_DESCRIPTOR,
    MAX_MANIFEST_SIZE,
    ContainerConfig,
    Descriptor,
    History,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    RootFS,
    chain_ids,
    host_platform,
    parse_config,
    parse_manifest,
)
from gantry.oci import mediatypes as mt
from gantry.oci.canonical import FrozenDict, dumps
from gantry.oci.config import rfc3339

D1 = Digest("sha256:" + "1" * 64)
D2 = Digest("sha256:" + "2" * 64)
D3 = Digest("sha256:" + "3" * 64)


def desc(media_type: str = mt.OCI_LAYER_GZIP, digest: str = D1, size: int = 10) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size}


def manifest_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": desc(mt.OCI_CONFIG, D2, 5),
        "layers": [desc()],
    }
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


def index_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {**desc(mt.OCI_MANIFEST, D1), "platform": {"os": "linux", "architecture": "amd64"}}
        ],
    }
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


def raw(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


# --- media types -------------------------------------------------------------------


def test_media_type_predicates_and_conversion() -> None:
    assert mt.is_manifest(mt.OCI_MANIFEST) and mt.is_manifest(mt.DOCKER_MANIFEST)
    assert mt.is_index(mt.DOCKER_MANIFEST_LIST) and not mt.is_index(mt.OCI_MANIFEST)
    assert mt.is_layer(mt.DOCKER_FOREIGN_LAYER) and not mt.is_layer(mt.OCI_CONFIG)
    assert mt.layer_compression(mt.OCI_LAYER_ZSTD) == "zstd"
    assert mt.layer_compression(mt.DOCKER_LAYER) == "gzip"
    assert mt.layer_compression(mt.OCI_LAYER) is None
    with pytest.raises(InvalidManifest):
        mt.layer_compression(mt.OCI_CONFIG)
    for oci, docker in [
        (mt.OCI_MANIFEST, mt.DOCKER_MANIFEST),
        (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST),
        (mt.OCI_CONFIG, mt.DOCKER_CONFIG),
        (mt.OCI_LAYER_GZIP, mt.DOCKER_LAYER),
        (mt.OCI_LAYER_NONDIST_GZIP, mt.DOCKER_FOREIGN_LAYER),
    ]:
        assert mt.docker_equivalent(oci) == docker and mt.oci_equivalent(docker) == oci
        assert mt.docker_equivalent(docker) == docker and mt.oci_equivalent(oci) == oci
    with pytest.raises(InvalidManifest):
        mt.docker_equivalent(mt.OCI_LAYER_ZSTD)  # schema 2 has no zstd
    assert mt.layer_type("zstd") == mt.OCI_LAYER_ZSTD
    assert mt.layer_type("gzip", docker=True) == mt.DOCKER_LAYER
    assert mt.is_nondistributable(mt.DOCKER_FOREIGN_LAYER)
    assert of_bytes(mt.EMPTY_JSON) == mt.EMPTY_DIGEST == EMPTY_DESCRIPTOR.digest
    assert EMPTY_DESCRIPTOR.data == b"{}" and EMPTY_DESCRIPTOR.size == 2


# --- platforms ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("Linux/X86-64", "linux/amd64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm64/v9", "linux/arm64/v9"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/6", "linux/arm/v6"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("linux/i386", "linux/386"),
        ("macos/arm64", "darwin/arm64"),
        ("linux/riscv64", "linux/riscv64"),
        ("arm64", "linux/arm64"),
        ("s390x", "linux/s390x"),
    ],
)
def test_platform_parse_normalizes(spec: str, want: str) -> None:
    assert str(Platform.parse(spec)) == want


def test_platform_parse_os_only_uses_host_arch() -> None:
    p = Platform.parse("linux")
    assert (p.os, p.architecture) == ("linux", host_platform().architecture)


@pytest.mark.parametrize(
    "bad", ["", "linux/", "foo", "linux/amd64/v1/x", "linux/*", "lin ux/amd64", "linux/amd64\n"]
)
def test_platform_parse_errors(bad: str) -> None:
    with pytest.raises(UsageError) as exc:
        Platform.parse(bad)
    assert bad in str(exc.value) and "invalid argument" in str(exc.value)


def test_platform_matches_after_normalization() -> None:
    want = Platform.parse("linux/arm64/v8")
    assert want.matches(Platform("linux", "arm64"))
    assert want.matches(Platform("linux", "aarch64", "v8"))
    assert not want.matches(Platform("linux", "amd64"))
    assert Platform.parse("linux/arm").matches(Platform("linux", "arm", "v7"))
    assert not Platform.parse("linux/arm").matches(Platform("linux", "arm", "v6"))
    win = Platform("windows", "amd64", os_version="10.0.17763.1")
    assert win.matches(Platform("windows", "amd64"))
    assert not win.matches(Platform("windows", "amd64", os_version="10.0.20348.1"))


def test_host_platform() -> None:
    host = host_platform()
    assert host.os == pyplatform.system().lower()
    if pyplatform.machine() == "x86_64":
        assert str(host) == "linux/amd64"
    assert host.matches(Platform.parse(str(host)))


def test_platform_json_round_trip() -> None:
    p = Platform("windows", "amd64", "v2", "10.0", ("win32k",))
    d = p.to_dict()
    assert list(d) == ["architecture", "os", "os.version", "os.features", "variant"]
    assert Platform.from_dict(d) == p
    with pytest.raises(InvalidManifest, match="architecture"):
        Platform.from_dict({"os": "linux"})


# --- descriptors -------------------------------------------------------------------


def test_descriptor_round_trip_and_order() -> None:
    d = Descriptor(
        mt.OCI_MANIFEST,
        D1,
        7,
        annotations={"b": "2", "a": "1"},
        platform=Platform("linux", "amd64"),
        urls=("https://example.com/x",),
        artifact_type="application/vnd.example",
    )
    out = d.to_dict()
    assert list(out) == [
        "mediaType",
        "digest",
        "size",
        "urls",
        "annotations",
        "platform",
        "artifactType",
    ]
    assert list(out["annotations"]) == ["a", "b"]
    assert Descriptor.from_dict(out) == d
    assert isinstance(d.annotations, FrozenDict) and hash(d) == hash(Descriptor.from_dict(out))
    assert d.with_annotations({"c": "3"}).annotations == {"a": "1", "b": "2", "c": "3"}
    assert d.annotations == {"b": "2", "a": "1"}  # the original is untouched


def test_descriptor_of_and_embedded_data() -> None:
    d = Descriptor.of(b"hello", "text/plain", embed=True)
    assert d.size == 5 and d.digest == of_bytes(b"hello")
    assert d.to_dict()["data"] == "aGVsbG8="
    assert Descriptor.from_dict(d.to_dict()).data == b"hello"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"mediaType": None}, "missing required field 'mediaType'"),
        ({"digest": None}, "missing required field 'digest'"),
        ({"size": None}, "missing required field 'size'"),
        ({"size": -1}, "out of range"),
        ({"size": 1 << 63}, "out of range"),
        ({"size": "10"}, "expected an integer, got string"),
        ({"size": True}, "expected an integer, got boolean"),
        ({"size": 10.0}, "expected an integer, got number"),
        ({"digest": "sha256:abc"}, "digest"),
        ({"digest": "SHA256:" + "a" * 64}, "digest"),
        ({"digest": "md5:" + "a" * 32}, "unsupported digest algorithm"),
        ({"digest": 5}, "expected a string"),
        ({"mediaType": "nope"}, "invalid media type"),
        ({"mediaType": ""}, "invalid media type"),
        ({"mediaType": "a/b\n"}, "invalid media type"),
        ({"urls": ["relative/path"]}, "not an absolute URI"),
        ({"urls": "https://x"}, "expected an array"),
        ({"annotations": {"a": 1}}, "expected a string"),
        ({"annotations": []}, "expected an object"),
        ({"artifactType": "x"}, "invalid media type"),
        ({"data": "!!!"}, "invalid base64"),
        ({"data": "aGVsbG8="}, "embedded data is 5 bytes"),
        ({"platform": {"os": "linux"}}, "architecture"),
    ],
)
def test_descriptor_rejects(change: dict[str, Any], reason: str) -> None:
    doc = {**desc(), **change}
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(InvalidManifest) as exc:
        Descriptor.from_dict(doc, "layer")
    assert reason in str(exc.value) and str(exc.value).startswith("layer")


def test_descriptor_data_must_hash_to_digest() -> None:
    with pytest.raises(InvalidManifest, match="does not match"):
        Descriptor.from_dict({**desc(size=5), "data": "aGVsbG8="})


# --- manifests and indexes -----------------------------------------------------------


def test_manifest_round_trip_is_canonical() -> None:
    m = parse_manifest(raw(manifest_doc(annotations={"z": "1", "a": "<&>"})))
    assert isinstance(m, Manifest) and not m.is_docker
    out = m.to_json()
    assert out.startswith(b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest')
    assert b" " not in out and b"\\u003c\\u0026\\u003e" in out  # Go's HTML escaping
    assert parse_manifest(out) == m and parse_manifest(out).to_json() == out
    assert m.descriptor().digest == of_bytes(out) and m.descriptor().size == len(out)


def test_docker_manifest_and_list() -> None:
    doc = manifest_doc(
        mediaType=mt.DOCKER_MANIFEST,
        config=desc(mt.DOCKER_CONFIG, D2, 5),
        layers=[desc(mt.DOCKER_LAYER), desc(mt.DOCKER_FOREIGN_LAYER, D3)],
    )
    m = Manifest.parse(raw(doc), mt.DOCKER_MANIFEST)
    assert m.is_docker and m.to_json() == dumps(doc)
    lst = Index.parse(raw(index_doc(mediaType=mt.DOCKER_MANIFEST_LIST)))
    assert lst.is_docker and lst.media_type == mt.DOCKER_MANIFEST_LIST


def test_media_type_detection_without_mediatype_field() -> None:
    assert isinstance(parse_manifest(raw(manifest_doc(mediaType=None))), Manifest)
    assert isinstance(parse_manifest(raw(index_doc(mediaType=None))), Index)
    # The transport's content type decides when the document is silent...
    m = parse_manifest(raw(manifest_doc(mediaType=None)), mt.DOCKER_MANIFEST + "; charset=utf-8")
    assert m.media_type == mt.DOCKER_MANIFEST
    # ...and a generic one is ignored.
    assert parse_manifest(raw(manifest_doc()), "application/json").media_type == mt.OCI_MANIFEST


def test_empty_layers_accepted() -> None:
    m = Manifest.parse(raw(manifest_doc(layers=[])))
    assert m.layers == ()


def test_index_select_platform() -> None:
    amd = {**desc(mt.OCI_MANIFEST, D1), "platform": {"os": "linux", "architecture": "amd64"}}
    arm = {
        **desc(mt.OCI_MANIFEST, D2),
        "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
    }
    att = {
        **desc(mt.OCI_MANIFEST, D3),
        "platform": {"os": "unknown", "architecture": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
    }
    idx = Index.parse(raw(index_doc(manifests=[att, amd, arm])))
    sel = idx.select(Platform.parse("linux/arm64"))
    assert sel is not None and sel.digest == D2
    sel = idx.select(Platform.parse("linux/amd64"))
    assert sel is not None and sel.digest == D1
    assert idx.select(Platform.parse("linux/s390x")) is None
    assert [str(p) for p in idx.platforms()] == ["linux/amd64", "linux/arm64/v8"]


BAD_MANIFESTS: list[tuple[bytes, str]] = [
    (b"", "invalid JSON"),
    (b"not json", "invalid JSON"),
    (b"[1,2]", "expected a JSON object, got array"),
    (b"\xff\xfe{}", "not valid UTF-8"),
    (b'{"schemaVersion":2,"schemaVersion":2,"config":{}}', "duplicate key"),
    (b'{"schemaVersion":NaN,"config":{}}', "invalid JSON number"),
    (b'{"schemaVersion":' + b"1" * 5000 + b"}", "invalid JSON"),
    (raw(manifest_doc(schemaVersion=None)), "missing required field 'schemaVersion'"),
    (raw(manifest_doc(schemaVersion=3)), "unsupported version 3"),
    (raw(manifest_doc(schemaVersion="2")), "expected an integer"),
    (raw(manifest_doc(config=None)), "missing required field 'config'"),
    (raw(manifest_doc(layers=None)), "missing required field 'layers'"),
    (raw(manifest_doc(layers={})), "expected an array"),
    (raw(manifest_doc(layers=[desc(size=-5)])), "manifest.layers[0].size"),
    (raw(manifest_doc(layers=[desc(digest="sha256:zz")])), "manifest.layers[0].digest"),
    (raw(manifest_doc(config=desc(mt.OCI_CONFIG, D2, "5"))), "manifest.config.size"),
    (raw(manifest_doc(annotations={"a": None})), "manifest.annotations"),
    (raw(manifest_doc(mediaType="application/vnd.example+json")), "unsupported manifest"),
    (raw(manifest_doc(mediaType=5)), "expected a string"),
    (raw(manifest_doc(manifests=[])), "must not contain a 'manifests'"),
    (raw(index_doc(config=desc())), "must not contain 'config'"),
    (raw(index_doc(manifests=None)), "missing required field 'manifests'"),
    (raw(index_doc(manifests=[{"mediaType": mt.OCI_MANIFEST}])), "index.manifests[0]"),
    (raw(manifest_doc(subject="nope")), "manifest.subject"),
    (raw(manifest_doc(artifactType="bad")), "artifactType"),
    (b'{"schemaVersion":2}', "cannot tell"),
    (raw({"schemaVersion": 1, "fsLayers": []}), "schema 1"),
    (raw(manifest_doc(mediaType=mt.DOCKER_SCHEMA1_SIGNED)), "schema 1"),
]


@pytest.mark.parametrize(("data", "reason"), BAD_MANIFESTS)
def test_parse_manifest_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidManifest) as exc:
        parse_manifest(data)
    assert reason in str(exc.value)
    assert "\n" not in str(exc.value)


def test_media_type_mismatch_with_transport() -> None:
    with pytest.raises(InvalidManifest, match="does not match"):
        parse_manifest(raw(manifest_doc()), mt.DOCKER_MANIFEST)
    with pytest.raises(InvalidManifest, match="schema 1"):
        parse_manifest(raw(manifest_doc(mediaType=None)), mt.DOCKER_SCHEMA1_MANIFEST)
    with pytest.raises(InvalidManifest, match="expected an image index"):
        Index.parse(raw(manifest_doc()))
    with pytest.raises(InvalidManifest, match="expected an image manifest"):
        Manifest.parse(raw(index_doc()))


def test_manifest_size_limit() -> None:
    base = manifest_doc()
    pad = MAX_MANIFEST_SIZE - len(raw({**base, "annotations": {"p": ""}}))
    exact = raw({**base, "annotations": {"p": "x" * pad}})
    assert len(exact) == MAX_MANIFEST_SIZE
    parse_manifest(exact)
    over = raw({**base, "annotations": {"p": "x" * (pad + 1)}})
    with pytest.raises(InvalidManifest, match="too large"):
        parse_manifest(over)


def test_deeply_nested_json_is_refused() -> None:
    data = b'{"schemaVersion":2,"config":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidManifest):
        parse_manifest(data)


# --- image config ------------------------------------------------------------------

DOCKER_CONFIG = {
    "architecture": "amd64",
    "config": {
        "Hostname": "",
        "Domainname": "",
        "User": "app",
        "AttachStdin": False,
        "ExposedPorts": {"80/tcp": {}},
        "Tty": False,
        "Env": ["PATH=/usr/bin", "A=b=c"],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 5000000000},
        "ArgsEscaped": True,
        "Image": "sha256:" + "9" * 64,
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": {"maintainer": "x"},
        "StopSignal": "SIGQUIT",
        "Shell": ["/bin/bash", "-c"],
    },
    "container": "abc",
    "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) CMD"]},
    "created": "2023-01-01T00:00:00.123456789Z",
    "docker_version": "20.10.7",
    "history": [
        {"created": "2023-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:x in /"},
        {"created": "2023-01-01T00:00:01Z", "created_by": "CMD", "empty_layer": True},
    ],
    "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [D1]},
}


def test_docker_config_extensions_and_unknown_keys_survive() -> None:
    c = parse_config(raw(DOCKER_CONFIG))
    cc = c.container_config
    assert cc.user == "app" and cc.exposed_ports == ("80/tcp",)
    assert cc.env_dict() == {"PATH": "/usr/bin", "A": "b=c"}
    assert cc.cmd == ("nginx", "-g", "daemon off;") and cc.entrypoint is None
    assert cc.healthcheck is not None and cc.healthcheck.interval == 5_000_000_000
    assert cc.healthcheck.test == ("CMD-SHELL", "curl -f localhost")
    assert cc.shell == ("/bin/bash", "-c") and cc.stop_signal == "SIGQUIT" and cc.args_escaped
    assert cc.extra["Hostname"] == "" and cc.extra["Image"] == "sha256:" + "9" * 64
    assert c.extra["docker_version"] == "20.10.7"
    assert c.platform == Platform("linux", "amd64")
    out = json.loads(c.to_json())
    # Everything survives except nulls and empty strings, which Go reads as "unset" too.
    want = json.loads(raw(DOCKER_CONFIG))
    for k in ("Volumes", "Entrypoint", "OnBuild", "WorkingDir"):
        del want["config"][k]
    assert out == want
    assert parse_config(c.to_json()) == c
    assert [(h.created_by, d) for h, d in c.history_layers()] == [
        ("/bin/sh -c #(nop) ADD file:x in /", D1),
        ("CMD", None),
    ]


def test_config_built_in_code_has_fixed_key_order() -> None:
    c = ImageConfig(
        architecture="arm64",
        os="linux",
        variant="v8",
        created="2024-01-01T00:00:00Z",
        config=ContainerConfig(env=("A=1",), cmd=(), labels={"b": "1", "a": "2"}),
        rootfs=RootFS((D1,)),
        history=(History(created_by="x"),),
    )
    out = c.to_json()
    assert list(json.loads(out)) == [
        "created",
        "architecture",
        "os",
        "variant",
        "config",
        "rootfs",
        "history",
    ]
    assert b'"Cmd":[]' in out  # an explicit empty Cmd is kept, distinct from unset
    assert b'"Labels":{"a":"2","b":"1"}' in out
    assert c.replace(author="me").author == "me" and c.author is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"architecture": None}, "missing required field 'architecture'"),
        ({"os": 1}, "config.os: expected a string"),
        ({"rootfs": None}, "missing required field 'rootfs'"),
        ({"rootfs": {"type": "layers"}}, "diff_ids"),
        ({"rootfs": {"type": "tar", "diff_ids": []}}, "must be 'layers'"),
        ({"rootfs": {"type": "layers", "diff_ids": ["sha256:bad"]}}, "diff_ids[0]"),
        ({"created": "yesterday"}, "RFC 3339"),
        ({"created": "2023-01-01 00:00:00Z"}, "RFC 3339"),  # Go wants the T
        ({"created": "2023-01-01T00:00:00Z\n"}, "RFC 3339"),
        ({"history": "x"}, "expected an array"),
        ({"history": [{"empty_layer": "yes"}]}, "history[0].empty_layer"),
        ({"config": {"Env": ["NOEQUALS"]}}, "KEY=VALUE"),
        ({"config": {"Env": [1]}}, "Env[0]"),
        ({"config": {"User": 1}}, "User"),
        ({"config": {"Volumes": ["/a"]}}, "Volumes"),
        ({"config": {"ExposedPorts": {"80/tcp": 1}}}, "ExposedPorts"),
        ({"config": {"Cmd": "echo"}}, "Cmd"),
        ({"config": {"Labels": {"a": 1}}}, "Labels"),
        ({"config": {"Healthcheck": {"Interval": -1}}}, "must not be negative"),
        ({"config": {"ArgsEscaped": "true"}}, "ArgsEscaped"),
        ({"config": []}, "expected an object"),
    ],
)
def test_parse_config_rejects(change: dict[str, Any], reason: str) -> None:
    doc = {**DOCKER_CONFIG, **change}
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(InvalidManifest) as exc:
        parse_config(raw(doc))
    assert reason in str(exc.value)


def test_chain_ids() -> None:
    assert chain_ids([]) == []
    assert chain_ids([D1]) == [D1]
    ids = chain_ids([D1, D2, D3])
    c2 = "sha256:" + hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()
    c3 = "sha256:" + hashlib.sha256(f"{c2} {D3}".encode()).hexdigest()
    assert ids == [D1, c2, c3]
    assert chain_ids([D2, D1])[1] != c2  # order matters
    assert all(isinstance(i, Digest) for i in ids)
    with pytest.raises(Exception, match="digest"):
        chain_ids(["sha256:nope"])


def test_canonical_escaping_matches_go() -> None:
    assert (
        dumps({"a": "<>&\u2028\u2029é\n"})
        == b'{"a":"\\u003c\\u003e\\u0026\\u2028\\u2029\xc3\xa9\\n"}'
    )
    with pytest.raises(InvalidManifest):
        dumps({"a": "\ud800"})


def test_convert_between_oci_and_docker() -> None:
    m = Manifest.parse(raw(manifest_doc(layers=[desc(mt.OCI_LAYER_GZIP), desc(mt.OCI_LAYER, D3)])))
    d = m.to_docker()
    assert d.media_type == mt.DOCKER_MANIFEST and d.config.media_type == mt.DOCKER_CONFIG
    assert [x.media_type for x in d.layers] == [mt.DOCKER_LAYER, mt.DOCKER_LAYER_TAR]
    assert [x.digest for x in d.layers] == [x.digest for x in m.layers]
    assert d.to_oci() == m and d.to_docker() is d and m.to_oci() is m
    assert Manifest.parse(d.to_json(), mt.DOCKER_MANIFEST) == d
    with pytest.raises(InvalidManifest, match="no Docker schema 2 equivalent"):
        Manifest.parse(raw(manifest_doc(layers=[desc(mt.OCI_LAYER_ZSTD)]))).to_docker()
    art = Manifest(EMPTY_DESCRIPTOR, (), artifact_type="application/vnd.example")
    with pytest.raises(InvalidManifest, match="artifact"):
        art.to_docker()


def test_rfc3339_like_go() -> None:
    import datetime as dt

    utc = dt.UTC
    assert rfc3339(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc)) == "2024-01-02T03:04:05Z"
    assert rfc3339(dt.datetime(2024, 1, 2, 3, 4, 5, 500000)) == "2024-01-02T03:04:05.5Z"
    tz = dt.timezone(dt.timedelta(hours=-5, minutes=-30))
    assert rfc3339(dt.datetime(999, 1, 2, 3, 4, 5, 120, tzinfo=tz)) == (
        "0999-01-02T03:04:05.00012-05:30"
    )
