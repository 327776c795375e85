"""Property tests: whatever models gantry builds, what it writes validates against the
image-spec schemas and reads back to the same model."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gantry import digest as dg
from gantry.digest import Digest
from gantry.oci import (
    ContainerConfig,
    Descriptor,
    Healthcheck,
    History,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    RootFS,
    mediatypes,
    parse_config,
    parse_manifest,
)
from gantry.oci.config import rfc3339
from test_oci_schema import assert_valid

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

digests = st.binary(max_size=16).map(dg.of_bytes)
sizes = st.integers(min_value=0, max_value=(1 << 63) - 1)
text = st.text(max_size=12)
keys = st.text(min_size=1, max_size=12)
maps = st.dictionaries(keys, text, max_size=3)
media_types = st.one_of(
    st.sampled_from(
        [
            mediatypes.OCI_LAYER,
            mediatypes.OCI_LAYER_GZIP,
            mediatypes.OCI_LAYER_ZSTD,
            mediatypes.OCI_MANIFEST,
            mediatypes.OCI_EMPTY,
            "application/vnd.example+type",
        ]
    ),
    st.from_regex(r"[a-z0-9][a-z0-9.+-]{0,20}/[a-z0-9][a-z0-9.+_-]{0,20}", fullmatch=True),
)
platforms = st.builds(
    Platform,
    os=st.sampled_from(["linux", "windows", "freebsd"]),
    architecture=st.sampled_from(["amd64", "arm64", "arm", "s390x"]),
    variant=st.sampled_from([None, "v7", "v8"]),
    os_version=st.sampled_from([None, "10.0.17763.1"]),
    os_features=st.lists(st.sampled_from(["win32k", "x"]), max_size=2).map(tuple),
)
urls = st.lists(
    st.from_regex(r"https://[a-z]{1,8}\.example/[a-z0-9/]{0,12}", fullmatch=True), max_size=2
).map(tuple)


@st.composite
def descriptors(draw: Any, with_platform: bool = False) -> Descriptor:
    embed = draw(st.booleans())
    if embed:
        data = draw(st.binary(max_size=20))
        return Descriptor.of(
            data,
            draw(media_types),
            annotations=draw(maps),
            platform=draw(platforms) if with_platform else None,
            embed=True,
        )
    return Descriptor(
        media_type=draw(media_types),
        digest=draw(digests),
        size=draw(sizes),
        annotations=draw(maps),
        platform=draw(st.none() | platforms) if with_platform else None,
        urls=draw(urls),
        artifact_type=draw(st.none() | media_types),
    )


manifests = st.builds(
    Manifest,
    config=descriptors(),
    layers=st.lists(descriptors(), min_size=1, max_size=3).map(tuple),
    subject=st.none() | descriptors(),
    annotations=maps,
    artifact_type=st.none() | media_types,
)
indexes = st.builds(
    Index,
    manifests=st.lists(descriptors(with_platform=True), max_size=3).map(tuple),
    subject=st.none() | descriptors(),
    annotations=maps,
    artifact_type=st.none() | media_types,
)
times = st.datetimes(timezones=st.none() | st.timezones()).map(rfc3339)
env = st.lists(
    st.tuples(st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True), text).map("=".join),
    max_size=3,
).map(tuple)
argv = st.none() | st.lists(text, max_size=3).map(tuple)
container_configs = st.builds(
    ContainerConfig,
    user=text,
    exposed_ports=st.lists(st.sampled_from(["80/tcp", "53/udp", "8080"]), unique=True).map(tuple),
    env=env,
    entrypoint=argv,
    cmd=argv,
    volumes=st.lists(st.sampled_from(["/data", "/var/log"]), unique=True).map(tuple),
    working_dir=text,
    labels=maps,
    stop_signal=st.sampled_from(["", "SIGTERM", "9"]),
    args_escaped=st.booleans(),
    healthcheck=st.none()
    | st.builds(
        Healthcheck,
        test=st.lists(text, max_size=3).map(tuple),
        interval=st.integers(0, 10**12),
        retries=st.integers(0, 10),
    ),
    on_build=st.lists(text, max_size=2).map(tuple),
    shell=argv,
)
configs = st.builds(
    ImageConfig,
    architecture=st.sampled_from(["amd64", "arm64"]),
    os=st.just("linux"),
    rootfs=st.builds(RootFS, diff_ids=st.lists(digests, max_size=3).map(tuple)),
    config=st.none() | container_configs,
    history=st.lists(
        st.builds(
            History,
            created=st.none() | times,
            created_by=st.none() | text,
            comment=st.none() | text,
            empty_layer=st.booleans(),
        ),
        max_size=3,
    ).map(tuple),
    created=st.none() | times,
    author=st.none() | text,
    variant=st.none() | st.just("v8"),
)


@SETTINGS
@given(manifests)
def test_any_manifest_gantry_writes_validates(m: Manifest) -> None:
    data = m.to_json()
    assert_valid(data, mediatypes.OCI_MANIFEST)
    back = parse_manifest(data)
    assert back == m and back.to_json() == data


@SETTINGS
@given(indexes)
def test_any_index_gantry_writes_validates(idx: Index) -> None:
    data = idx.to_json()
    assert_valid(data, mediatypes.OCI_INDEX)
    back = parse_manifest(data)
    assert back == idx and back.to_json() == data


@SETTINGS
@given(configs)
def test_any_config_gantry_writes_validates(c: ImageConfig) -> None:
    data = c.to_json()
    assert_valid(data, mediatypes.OCI_CONFIG)
    back = parse_config(data)
    assert back.to_json() == data
    # equal up to what JSON cannot tell apart: empty strings are "unset"
    assert back.rootfs == c.rootfs and back.history == c.history


@SETTINGS
@given(descriptors(with_platform=True))
def test_any_descriptor_validates(d: Descriptor) -> None:
    from test_oci_schema import schema_errors

    assert schema_errors(d.to_dict(), mediatypes.OCI_DESCRIPTOR) == []
    assert Descriptor.from_dict(d.to_dict()) == d
    assert isinstance(d.digest, Digest)
