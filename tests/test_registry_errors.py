"""Error answers side by side with distribution 2.8: same status, code and message
(the words docker, skopeo and scripts show or look for), same detail where
distribution gives one. Where gantry answers differently on purpose, the case says why.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from typing import Any

import pytest

from gantry.oci import mediatypes as mt
from test_distribution_support import distribution
from test_registry_support import make_oci_layout, registry_process, skopeo

ZERO = "sha256:" + "0" * 64
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

pytestmark = [pytest.mark.slow, pytest.mark.peers]


def answer(
    addr: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, first error entry or None) of one request."""
    req = urllib.request.Request(
        f"http://{addr}{path}", data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status), None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return int(e.code), json.loads(raw)["errors"][0]
        except (ValueError, KeyError, IndexError):
            return int(e.code), raw.decode(errors="replace").strip()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        pytest.skip("docker-registry (distribution) and skopeo are needed")
    tmp = tmp_path_factory.mktemp("errors")
    src = tmp / "src"
    mdigest, blobs = make_oci_layout(src)
    index_src = tmp / "index"
    make_oci_layout(index_src, index=True)
    with (
        registry_process(tmp, "--data", str(tmp / "data"), "-q") as (gantry, _),
        distribution(tmp) as dist,
    ):
        for addr in (gantry, dist):
            for layout, ref in ((src, "e/img:1"), (index_src, "e/idx:1")):
                skopeo(
                    "copy",
                    "--dest-tls-verify=false",
                    f"oci:{layout}:latest",
                    f"docker://{addr}/{ref}",
                )
        yield {"gantry": gantry, "distribution": dist, "manifest": mdigest, "blobs": blobs}


def manifest_with_unknown_config() -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": ZERO, "size": 3},
            "layers": [],
        }
    ).encode()


CASES: list[tuple[str, str, str, bytes | None, dict[str, str]]] = [
    ("unknown tag", "GET", "/v2/e/img/manifests/nope", None, {}),
    ("unknown repository", "GET", "/v2/no/such/manifests/1", None, {}),
    ("unknown manifest digest", "GET", f"/v2/e/img/manifests/{ZERO}", None, {}),
    ("unknown blob", "GET", f"/v2/e/img/blobs/{ZERO}", None, {}),
    ("HEAD unknown blob", "HEAD", f"/v2/e/img/blobs/{ZERO}", None, {}),
    ("tags of unknown repository", "GET", "/v2/no/such/tags/list", None, {}),
    (
        "OCI manifest, Accept without OCI",
        "GET",
        "/v2/e/img/manifests/1",
        None,
        {"Accept": mt.DOCKER_MANIFEST},
    ),
    (
        "OCI index, Accept without indexes",
        "GET",
        "/v2/e/idx/manifests/1",
        None,
        {"Accept": f"{mt.DOCKER_MANIFEST}, {mt.DOCKER_MANIFEST_LIST}"},
    ),
    (
        "manifest with an unknown blob",
        "PUT",
        "/v2/e/img/manifests/bad",
        manifest_with_unknown_config(),
        {"Content-Type": mt.OCI_MANIFEST},
    ),
    (
        "manifest body not matching its digest",
        "PUT",
        f"/v2/e/img/manifests/{ZERO}",
        manifest_with_unknown_config(),
        {"Content-Type": mt.OCI_MANIFEST},
    ),
    ("delete unknown manifest", "DELETE", f"/v2/e/img/manifests/{ZERO}", None, {}),
    ("delete unknown blob", "DELETE", f"/v2/e/img/blobs/{ZERO}", None, {}),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_error_answers_match_distribution(
    servers: dict[str, Any], case: tuple[str, str, str, bytes | None, dict[str, str]]
) -> None:
    _, method, path, body, headers = case
    got = {
        kind: answer(servers[kind], method, path, body, headers)
        for kind in ("gantry", "distribution")
    }
    (gs, ge), (ds, de) = got["gantry"], got["distribution"]
    assert gs == ds, got
    if method == "HEAD":
        return  # no body either side
    assert isinstance(ge, dict) and isinstance(de, dict), got
    assert (ge["code"], ge["message"]) == (de["code"], de["message"]), got
    if "detail" in de and de["detail"] not in ({}, None):
        assert ge.get("detail") == de["detail"], got


def test_where_gantry_answers_otherwise(servers: dict[str, Any]) -> None:
    """On purpose, and spec-conformant: distribution 2.8 answers these with a 500, a
    404, a 200 that ignores the parameter, or a code meant for another case."""
    g, d = servers["gantry"], servers["distribution"]
    # a malformed digest is the client's error, not the server's
    assert answer(d, "GET", "/v2/e/img/manifests/sha256:abc")[0] == 500
    status, err = answer(g, "GET", "/v2/e/img/manifests/sha256:abc")
    assert status == 400 and err["code"] == "DIGEST_INVALID"
    # an upper-case name is invalid (distribution: 404 or 500, by route)
    assert answer(d, "GET", "/v2/E/img/manifests/1")[0] in (404, 500)
    status, err = answer(g, "GET", "/v2/E/img/manifests/1")
    assert status == 400 and err["code"] == "NAME_INVALID"
    # n must be a number: distribution ignores a bad one
    assert answer(d, "GET", "/v2/e/img/tags/list?n=abc")[0] == 200
    status, err = answer(g, "GET", "/v2/e/img/tags/list?n=abc")
    assert status == 400 and err["code"] == "PAGINATION_NUMBER_INVALID"
    # an upload that does not exist is unknown (distribution: BLOB_UPLOAD_INVALID)
    uid = "3f1b6d2e-8a51-4c2f-9d7e-1a2b3c4d5e6f"
    status, err = answer(g, "GET", f"/v2/e/img/blobs/uploads/{uid}")
    assert status == 404 and err["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert err["message"] == "blob upload unknown to registry"
