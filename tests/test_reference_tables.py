"""gantry.reference against distribution/reference's own test vectors (go-tables.json).

Every reference.* table is run with the function its ``semantics`` names. One
documented deviation: a sha512 digest is accepted (gantry supports sha512, as
Docker's binaries do); the Go test binary lacks sha512 and calls it unsupported.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import go_tables
from gantry import reference as r
from gantry.digest import Digest
from gantry.errors import InvalidReference

ERRORS = {
    "ErrNameEmpty": r.ERR_NAME_EMPTY,
    "ErrReferenceInvalidFormat": r.ERR_REFERENCE_INVALID_FORMAT,
    "ErrNameContainsUppercase": r.ERR_NAME_CONTAINS_UPPERCASE,
    "ErrNameTooLong": r.ERR_NAME_TOO_LONG,
    "ErrNameNotCanonical": r.ERR_NAME_NOT_CANONICAL,
    "digest.ErrDigestInvalidLength": r.ERR_CHECKSUM_LENGTH,
    "digest.ErrDigestUnsupported": r.ERR_CHECKSUM_UNSUPPORTED,
}

EXERCISED = {
    "reference.parse",
    "reference.with_name_failure",
    "reference.domain_and_path",
    "reference.serialization",
    "reference.with_tag",
    "reference.with_digest",
    "reference.parse_named",
    "reference.valid_repo_names",
    "reference.invalid_repo_names",
    "reference.valid_remote_names",
    "reference.invalid_remote_names",
    "reference.repository_info",
    "reference.parse_any",
    "reference.normalized_split_hostname",
    "reference.familiar_match",
    "reference.parse_docker_ref",
    "reference.domain_regexp",
    "reference.full_name_regexp",
    "reference.reference_regexp",
    "reference.identifier_regexp",
}


def cases(table: str) -> list[Any]:
    rows = go_tables()[table]["cases"]
    assert rows, table
    return [pytest.param(c, id=f"{i}") for i, c in enumerate(rows)]


def expect_error(ident: dict[str, str], fn: Any, arg: str) -> None:
    with pytest.raises(InvalidReference) as exc:
        fn(arg)
    assert str(exc.value) == ERRORS[ident["$ident"]]


def test_every_reference_table_is_exercised() -> None:
    assert {k for k in go_tables() if k.startswith("reference.")} == EXERCISED


@pytest.mark.parametrize("case", cases("reference.parse"))
def test_parse(case: dict[str, Any]) -> None:
    s = case["input"]
    if s.startswith("validname@sha512:"):
        ref = r.parse_raw(s)  # the documented deviation: sha512 is supported here
        assert ref.digest == s.split("@", 1)[1]
        return
    if "err" in case:
        expect_error(case["err"], r.parse_raw, s)
        return
    ref = r.parse_raw(s)
    assert str(ref) == s
    assert ref.name == case["repository"]
    assert ref.domain == case.get("domain", "")
    assert (ref.tag or "") == case.get("tag", "")
    assert (ref.digest or "") == case.get("digest", "")


@pytest.mark.parametrize("case", cases("reference.with_name_failure"))
def test_with_name_failure(case: dict[str, Any]) -> None:
    expect_error(case["err"], r.with_name, case["input"])


@pytest.mark.parametrize("case", cases("reference.domain_and_path"))
def test_domain_and_path(case: dict[str, Any]) -> None:
    ref = r.parse_raw(case["input"])
    assert (ref.domain, ref.path) == (case["domain"], case["path"])


@pytest.mark.parametrize("case", cases("reference.serialization"))
def test_serialization(case: dict[str, Any]) -> None:
    if "err" in case:
        expect_error(case["err"], r.parse_raw, case.get("input", ""))
        return
    ref = r.parse_raw(case["input"])
    assert ref.name == case["name"]
    assert (ref.tag or "") == case.get("tag", "")
    assert (ref.digest or "") == case.get("digest", "")
    text = json.dumps({"Field": str(ref)})
    back = r.parse_raw(json.loads(text)["Field"])
    assert back == ref and str(back) == case["input"]


@pytest.mark.parametrize("case", cases("reference.with_tag"))
def test_with_tag(case: dict[str, Any]) -> None:
    ref = r.with_name(case["name"])
    if case.get("digest"):
        ref = ref.with_digest(case["digest"])
    assert str(ref.with_tag(case["tag"])) == case["combined"]


@pytest.mark.parametrize("case", cases("reference.with_digest"))
def test_with_digest(case: dict[str, Any]) -> None:
    ref = r.with_name(case["name"])
    if case.get("tag"):
        ref = ref.with_tag(case["tag"])
    assert str(ref.with_digest(case["digest"])) == case["combined"]


@pytest.mark.parametrize("case", cases("reference.parse_named"))
def test_parse_named(case: dict[str, Any]) -> None:
    if "err" in case:
        expect_error(case["err"], r.parse_strict, case["input"])
        return
    ref = r.parse_strict(case["input"])
    assert (ref.domain, ref.path) == (case["domain"], case["path"])


@pytest.mark.parametrize("name", [c.values[0] for c in cases("reference.valid_repo_names")])
def test_valid_repo_names(name: str) -> None:
    r.parse(name)


@pytest.mark.parametrize("name", [c.values[0] for c in cases("reference.invalid_repo_names")])
def test_invalid_repo_names(name: str) -> None:
    with pytest.raises(InvalidReference):
        r.parse(name)


@pytest.mark.parametrize("name", [c.values[0] for c in cases("reference.valid_remote_names")])
def test_valid_remote_names(name: str) -> None:
    r.parse(name)
    r.validate_repository(name)


@pytest.mark.parametrize("name", [c.values[0] for c in cases("reference.invalid_remote_names")])
def test_invalid_remote_names(name: str) -> None:
    with pytest.raises(InvalidReference):
        r.parse(name)
    if len(name) != 64:  # a 64-hex string is a valid repository path, just not a name
        with pytest.raises(InvalidReference):
            r.validate_repository(name)


@pytest.mark.parametrize("case", cases("reference.repository_info"))
def test_repository_info(case: dict[str, str]) -> None:
    inputs = [case["FullName"], case["FamiliarName"], case["AmbiguousName"]]
    for s in filter(None, inputs):
        ref = r.parse(s)
        assert ref.domain == case["Domain"], s
        assert ref.path == case["RemoteName"], s
        assert str(ref) == case["FullName"], s
        assert ref.name == case["FullName"], s
        assert ref.familiar_name == case["FamiliarName"], s


@pytest.mark.parametrize("case", cases("reference.parse_any"))
def test_parse_any(case: dict[str, Any]) -> None:
    got = r.parse_any(case["Reference"])
    assert str(got) == case["Equivalent"]
    if "Expected" in case:  # digestReference(...)
        assert isinstance(got, Digest) and got == case["Expected"]["args"][0]
    else:
        assert isinstance(got, r.Reference)
        assert got == r.parse(case["Equivalent"])


@pytest.mark.parametrize("case", cases("reference.normalized_split_hostname"))
def test_normalized_split_hostname(case: dict[str, str]) -> None:
    ref = r.parse(case["input"])
    assert (ref.domain, ref.path) == (case["domain"], case["path"])


@pytest.mark.parametrize("case", cases("reference.familiar_match"))
def test_familiar_match(case: dict[str, Any]) -> None:
    ref = r.parse(case["reference"])
    assert r.familiar_match(case["pattern"], ref) is case["expected"]


@pytest.mark.parametrize("case", cases("reference.parse_docker_ref"))
def test_parse_docker_ref(case: dict[str, str]) -> None:
    assert str(r.parse_docker_ref(case["input"])) == case["expected"]


@pytest.mark.parametrize("case", cases("reference.domain_regexp"))
def test_domain_regexp(case: dict[str, Any]) -> None:
    assert bool(r.DOMAIN_RE.fullmatch(case["input"])) is case["match"]


@pytest.mark.parametrize("case", cases("reference.full_name_regexp"))
def test_full_name_regexp(case: dict[str, Any]) -> None:
    m = r.NAME_RE.fullmatch(case["input"])
    assert bool(m) is case["match"]
    if m and "subs" in case:
        assert [m.group(1) or "", m.group(2)] == case["subs"]


@pytest.mark.parametrize("case", cases("reference.reference_regexp"))
def test_reference_regexp(case: dict[str, Any]) -> None:
    m = r.REFERENCE_RE.fullmatch(case["input"])
    assert bool(m) is case["match"]
    if m and "subs" in case:
        assert [m.group(1), m.group(2) or "", m.group(3) or ""] == case["subs"]


@pytest.mark.parametrize("case", cases("reference.identifier_regexp"))
def test_identifier_regexp(case: dict[str, Any]) -> None:
    assert bool(r.IDENTIFIER_RE.fullmatch(case["input"])) is case["match"]
