"""gantry.reference: Docker's normalization and wording, beyond the Go vectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gantry import reference as r
from gantry.digest import Digest, of_bytes
from gantry.errors import InvalidReference

SHA = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
        ("ubuntu:22.04", "docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
        ("library/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
        ("index.docker.io/library/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
        ("user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("localhost:5000/a/b", "localhost:5000/a/b:latest", "localhost:5000/a/b:latest"),
        ("localhost/a", "localhost/a:latest", "localhost/a:latest"),
        ("gcr.io/x/y:1", "gcr.io/x/y:1", "gcr.io/x/y:1"),
        (f"name@{SHA}", f"docker.io/library/name@{SHA}", f"name@{SHA}"),
        (f"name:tag@{SHA}", f"docker.io/library/name@{SHA}", f"name@{SHA}"),
        ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
    ],
)
def test_docker_normalization(text: str, full: str, familiar: str) -> None:
    ref = r.parse_docker_ref(text)
    assert str(ref) == full
    assert ref.familiar() == familiar
    assert r.parse_docker_ref(full) == ref  # idempotent
    assert r.parse_docker_ref(ref.familiar()) == ref


def test_parse_keeps_tag_and_digest() -> None:
    ref = r.parse(f"name:tag@{SHA}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("docker.io", "library/name", "tag", SHA)
    assert isinstance(ref.digest, Digest)
    assert ref.name == "docker.io/library/name" and ref.familiar_name == "name"
    assert str(ref) == f"docker.io/library/name:tag@{SHA}"
    assert r.parse("ubuntu").tag is None and r.parse("ubuntu").is_name_only


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Ubuntu", "invalid reference format: repository name (library/Ubuntu) must be lowercase"),
        ("user/App:1", "invalid reference format: repository name (user/App) must be lowercase"),
        (
            "a" * 64,
            f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings",
        ),
        ("ubuntu:bad~tag", "invalid reference format"),
        ("ubuntu:" + "t" * 129, "invalid reference format"),
        ("-ubuntu", "invalid reference format"),
        ("", "invalid reference format"),
        ("x/" + "a" * 254, "repository name must not be more than 255 characters"),
        ("ubuntu@sha256:" + "a" * 40, "invalid checksum digest length"),
        ("ubuntu@md5:" + "a" * 32, "unsupported digest algorithm"),
    ],
)
def test_docker_error_messages(text: str, message: str) -> None:
    with pytest.raises(InvalidReference) as exc:
        r.parse(text)
    assert str(exc.value) == message


def test_name_length_counts_the_path_only() -> None:
    assert r.parse("example.com/" + "a" * 255).path == "a" * 255
    with pytest.raises(InvalidReference):
        r.parse("example.com/" + "a" * 256)
    assert r.parse("x/" + "a" * 253).path == "x/" + "a" * 253


def test_tag_limits() -> None:
    assert r.parse("a:" + "T" * 128).tag == "T" * 128
    assert r.parse("a:_x.y-z").tag == "_x.y-z"
    for bad in (".x", "-x", "a b", "é"):
        with pytest.raises(InvalidReference, match="invalid tag format"):
            r.parse("a").with_tag(bad)
    assert r.validate_tag("v1.0") == "v1.0"


def test_with_tag_and_digest_keep_the_other() -> None:
    ref = r.parse("a:1").with_digest(SHA)
    assert str(ref) == f"docker.io/library/a:1@{SHA}"
    assert str(ref.with_tag("2")) == f"docker.io/library/a:2@{SHA}"
    assert str(ref.name_only()) == "docker.io/library/a"
    with pytest.raises(InvalidReference, match="invalid digest format"):
        ref.with_digest("sha256:short")


def test_parse_any() -> None:
    assert r.parse_any("a" * 64) == "sha256:" + "a" * 64
    assert isinstance(r.parse_any(SHA), Digest)
    assert r.parse_any("busybox") == r.parse("busybox")
    with pytest.raises(InvalidReference):
        r.parse_any("BAD")


def test_parse_strict() -> None:
    assert r.parse_strict("docker.io/library/ubuntu:1").tag == "1"
    with pytest.raises(InvalidReference, match="repository name must be canonical"):
        r.parse_strict("ubuntu:1")


@pytest.mark.parametrize(
    ("text", "like"),
    [
        ("3f2a", True),
        ("a" * 64, True),
        ("sha256:" + "a" * 12, True),
        ("a" * 65, False),
        ("ubuntu", False),
        ("ABCD", False),
        ("", False),
    ],
)
def test_is_id_like(text: str, like: bool) -> None:
    assert r.is_id_like(text) is like


def test_validate_repository() -> None:
    assert r.validate_repository("library/ubuntu") == "library/ubuntu"
    assert r.validate_repository("a" * 255) == "a" * 255
    cases = {
        "": "repository name must have at least one component",
        "Library/ubuntu": "repository name must be lowercase",
        "a//b": "invalid reference format",
        "a/b/": "invalid reference format",
        "localhost:5000/a": "invalid reference format",
        "a:tag": "invalid reference format",
        "a" * 256: "repository name must not be more than 255 characters",
    }
    for path, message in cases.items():
        with pytest.raises(InvalidReference) as exc:
            r.validate_repository(path)
        assert str(exc.value) == message, path


@pytest.mark.parametrize(
    ("pattern", "name", "want"),
    [
        ("a*", "abc", True),
        ("a*", "a/b", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("a[b-d]e", "ace", True),
        ("a[^b-d]e", "ace", False),
        ("a[^b-d]e", "axe", True),
        ("a[/]b", "a/b", True),  # Go: classes may match the separator
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("*/*", "user/app", True),
    ],
)
def test_path_match(pattern: str, name: str, want: bool) -> None:
    assert r.path_match(pattern, name) is want


@pytest.mark.parametrize("pattern", ["[", "a[", "[]a]", "[a-]", "a\\", "[z-a]"])
def test_path_match_bad_pattern(pattern: str) -> None:
    with pytest.raises(InvalidReference, match="syntax error in pattern"):
        r.path_match(pattern, "a")


def test_familiar_match_for_image_filters() -> None:
    ref = r.parse("busybox:1.36")
    assert r.familiar_match("busybox", ref)
    assert r.familiar_match("busybox:1.*", ref)
    assert not r.familiar_match("docker.io/library/busybox", ref)


def test_reference_is_immutable_and_hashable() -> None:
    ref = r.parse("a")
    assert {ref: 1}[r.parse("docker.io/library/a")] == 1
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]  # the point of the test: frozen


_components = st.from_regex(
    r"[a-z0-9]{1,4}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,4}){0,2}", fullmatch=True
)
_domains = st.sampled_from(
    [
        "docker.io",
        "localhost",
        "localhost:5000",
        "ghcr.io",
        "registry.example.com:443",
        "[::1]:5000",
    ]
)
_tags = st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digests = st.none() | st.binary(max_size=8).map(lambda b: str(of_bytes(b)))


@settings(max_examples=150, deadline=None)
@given(_domains, st.lists(_components, min_size=1, max_size=3), _tags, _digests)
def test_round_trips(domain: str, parts: list[str], tag: str | None, dgst: str | None) -> None:
    text = f"{domain}/{'/'.join(parts)}" + (f":{tag}" if tag else "") + (f"@{dgst}" if dgst else "")
    ref = r.parse(text)
    assert r.parse_raw(str(ref)) == ref
    assert r.parse(ref.familiar()) == ref  # the short form means the same image
    assert r.parse_strict(str(ref)) == ref
    docker = r.parse_docker_ref(text)
    assert docker.tag == (None if dgst else (tag or "latest"))


@pytest.mark.parametrize(
    ("full", "short"),
    [
        ("docker.io/0.0/0", "docker.io/0.0/0"),
        ("docker.io/foo.bar/app:1", "docker.io/foo.bar/app:1"),
        ("docker.io/localhost/app", "docker.io/localhost/app"),
        ("docker.io/user/app", "user/app"),
        ("docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
    ],
)
def test_familiar_form_never_reads_as_another_registry(full: str, short: str) -> None:
    ref = r.parse(full)
    assert ref.familiar() == short
    assert r.parse(short) == ref
