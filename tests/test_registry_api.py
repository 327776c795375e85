"""The distribution-spec API, in process (aiohttp's test server, real files)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from gantry.digest import Digest
from gantry.oci import mediatypes as mt
from gantry.oci.descriptor import Descriptor
from gantry.oci.manifest import Index, Manifest
from gantry.oci.platform import Platform
from gantry.registry import RegistryConfig
from gantry.registry.config import Endpoint, HtpasswdConfig
from test_registry_support import (
    OCI_ACCEPT,
    free_port,
    image_manifest,
    in_process,
    push_blob,
    push_image,
    raw_request,
    registry_process,
    sha,
)


def cfg(tmp_path: Path, **kw: Any) -> RegistryConfig:
    return RegistryConfig(data=tmp_path / "data", fsync=False, access_log=False, **kw)


async def codes(r: Any) -> list[str]:
    return [e["code"] for e in (await r.json(content_type=None))["errors"]]


def test_base_and_health(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        r = await c.get("/v2/")
        assert r.status == 200
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        r = await c.get("/v2")
        assert r.status == 200
        r = await c.get("/healthz")
        assert r.status == 200 and (await r.json())["status"] == "ok"

    in_process(cfg(tmp_path), body)


def test_blob_monolithic_get_head_and_ranges(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    d = sha(data)

    async def body(c: Any) -> None:
        r = await c.post(f"/v2/a/b/blobs/uploads/?digest={d}", data=data)
        assert r.status == 201
        assert r.headers["Location"] == f"/v2/a/b/blobs/{d}"
        assert r.headers["Docker-Content-Digest"] == d
        r = await c.head(f"/v2/a/b/blobs/{d}")
        assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)
        assert r.headers["Docker-Content-Digest"] == d
        assert await r.read() == b""
        r = await c.get(f"/v2/a/b/blobs/{d}")
        assert r.status == 200 and await r.read() == data
        assert r.headers["Accept-Ranges"] == "bytes"
        # satisfiable ranges
        for header, first, last in [
            ("bytes=0-99", 0, 99),
            ("bytes=10000-", 10000, 10239),
            ("bytes=-40", 10200, 10239),
            ("bytes=10200-999999", 10200, 10239),
        ]:
            r = await c.get(f"/v2/a/b/blobs/{d}", headers={"Range": header})
            assert r.status == 206, header
            assert await r.read() == data[first : last + 1]
            assert r.headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
        # unsatisfiable or invalid: 416 with the complete length
        for header in ["bytes=10240-", "bytes=-0", "bytes=50-10", "bytes=abc"]:
            r = await c.get(f"/v2/a/b/blobs/{d}", headers={"Range": header})
            assert r.status == 416, header
            assert r.headers["Content-Range"] == f"bytes */{len(data)}"
        # ignored: other units, several ranges, a stale If-Range
        for headers in [
            {"Range": "items=0-1"},
            {"Range": "bytes=0-1,5-6"},
            {"Range": "bytes=0-1", "If-Range": '"sha256:0000"'},
        ]:
            r = await c.get(f"/v2/a/b/blobs/{d}", headers=headers)
            assert r.status == 200 and await r.read() == data
        r = await c.get(f"/v2/a/b/blobs/{d}", headers={"Range": "bytes=0-1", "If-Range": f'"{d}"'})
        assert r.status == 206

    in_process(cfg(tmp_path), body)


def test_blob_errors(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        await push_blob(c, "a", b"x")
        missing = sha(b"nope")
        r = await c.get(f"/v2/a/blobs/{missing}")
        assert r.status == 404 and await codes(r) == ["BLOB_UNKNOWN"]
        r = await c.head(f"/v2/a/blobs/{missing}")
        assert r.status == 404
        for bad in ["sha256:1234", "sha256:" + "G" * 64, "md5:abcd", "nodigest"]:
            r = await c.get(f"/v2/a/blobs/{bad}")
            assert r.status == 400 and await codes(r) == ["DIGEST_INVALID"], bad
        r = await c.get(f"/v2/unknown/repo/blobs/{missing}")  # distribution: BLOB_UNKNOWN
        assert r.status == 404 and await codes(r) == ["BLOB_UNKNOWN"]
        # a digest that does not match the bytes is refused and nothing is stored
        r = await c.post(f"/v2/a/blobs/uploads/?digest={sha(b'other')}", data=b"bytes")
        assert r.status == 400 and await codes(r) == ["DIGEST_INVALID"]
        r = await c.get(f"/v2/a/blobs/{sha(b'bytes')}")
        assert r.status == 404
        r = await c.get(f"/v2/a/blobs/{sha(b'other')}")
        assert r.status == 404

    in_process(cfg(tmp_path), body)
    assert not list((tmp_path / "data" / "repositories" / "a" / "_uploads").iterdir())


def test_chunked_upload_in_order_status_cancel(tmp_path: Path) -> None:
    data = b"0123456789" * 1000
    d = sha(data)

    async def body(c: Any) -> None:
        r = await c.post("/v2/x/blobs/uploads/")
        assert r.status == 202
        loc = r.headers["Location"]
        uid = r.headers["Docker-Upload-UUID"]
        assert loc == f"/v2/x/blobs/uploads/{uid}" and r.headers["Range"] == "0-0"
        r = await c.patch(loc, data=data[:4000], headers={"Content-Range": "0-3999"})
        assert r.status == 202 and r.headers["Range"] == "0-3999"
        r = await c.get(loc)
        assert r.status == 204 and r.headers["Range"] == "0-3999"
        assert r.headers["Docker-Upload-UUID"] == uid
        # out of order: 416, and the headers say where the upload really is
        r = await c.patch(loc, data=data[5000:6000], headers={"Content-Range": "5000-5999"})
        assert r.status == 416 and await codes(r) == ["BLOB_UPLOAD_INVALID"]
        assert r.headers["Range"] == "0-3999" and r.headers["Location"] == loc
        # Content-Length disagreeing with Content-Range
        r = await c.patch(loc, data=data[4000:4010], headers={"Content-Range": "4000-4999"})
        assert r.status == 400 and await codes(r) == ["SIZE_INVALID"]
        # a chunk without Content-Range is appended (streamed upload)
        r = await c.patch(loc, data=data[4000:8000])
        assert r.status == 202 and r.headers["Range"] == "0-7999"
        # wrong digest on close: refused, upload still there
        r = await c.put(
            f"{loc}?digest={sha(b'wrong')}",
            data=data[8000:],
            headers={"Content-Range": "8000-9999"},
        )
        assert r.status == 400 and await codes(r) == ["DIGEST_INVALID"]
        r = await c.put(loc)
        assert r.status == 400 and await codes(r) == ["DIGEST_INVALID"]
        r = await c.put(f"{loc}?digest={d}")
        assert r.status == 201 and r.headers["Location"] == f"/v2/x/blobs/{d}"
        r = await c.get(f"/v2/x/blobs/{d}")
        assert await r.read() == data
        r = await c.get(loc)
        assert r.status == 404 and await codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
        # cancel
        r = await c.post("/v2/x/blobs/uploads/")
        loc2 = r.headers["Location"]
        r = await c.delete(loc2)
        assert r.status == 204
        r = await c.patch(loc2, data=b"x")
        assert r.status == 404 and await codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
        r = await c.get("/v2/x/blobs/uploads/not-a-uuid")
        assert r.status == 404 and await codes(r) == ["BLOB_UPLOAD_UNKNOWN"]

    in_process(cfg(tmp_path), body)


def test_upload_hash_survives_a_new_server(tmp_path: Path) -> None:
    """The hash cache is only an optimisation: another server finishes the upload."""
    data = b"abc" * 5000
    loc: list[str] = []

    async def first(c: Any) -> None:
        r = await c.post("/v2/x/blobs/uploads/")
        loc.append(r.headers["Location"])
        r = await c.patch(loc[0], data=data[:7000], headers={"Content-Range": "0-6999"})
        assert r.status == 202

    async def second(c: Any) -> None:
        r = await c.put(f"{loc[0]}?digest={sha(data)}", data=data[7000:])
        assert r.status == 201, await r.text()
        r = await c.get(f"/v2/x/blobs/{sha(data)}")
        assert await r.read() == data

    in_process(cfg(tmp_path), first)
    in_process(cfg(tmp_path), second)


def test_sha512_blob_and_manifest(tmp_path: Path) -> None:
    data = b"sha512 content"
    d512 = Digest("sha512:" + hashlib.sha512(data).hexdigest())

    async def body(c: Any) -> None:
        r = await c.post(f"/v2/s/blobs/uploads/?digest={d512}", data=data)
        assert r.status == 201 and r.headers["Docker-Content-Digest"] == d512
        r = await c.get(f"/v2/s/blobs/{d512}")
        assert await r.read() == data
        cfgb = b"{}"
        await push_blob(c, "s", cfgb)
        m = Manifest(
            config=Descriptor.of(cfgb, mt.OCI_CONFIG),
            layers=(Descriptor(mt.OCI_LAYER, d512, len(data)),),
        )
        mbody = m.to_json()
        md = "sha512:" + hashlib.sha512(mbody).hexdigest()
        r = await c.put(
            f"/v2/s/manifests/{md}", data=mbody, headers={"Content-Type": mt.OCI_MANIFEST}
        )
        assert r.status == 201 and r.headers["Docker-Content-Digest"] == md
        r = await c.get(f"/v2/s/manifests/{md}")
        assert r.status == 200 and await r.read() == mbody

    in_process(cfg(tmp_path), body)


def test_manifest_put_get_head_by_tag_and_digest(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        _m, mbody = await push_image(c, "lib/app", "v1")
        d = sha(mbody)
        for ref in ("v1", d):
            r = await c.get(f"/v2/lib/app/manifests/{ref}", headers={"Accept": OCI_ACCEPT})
            assert r.status == 200
            assert await r.read() == mbody
            assert r.headers["Content-Type"] == mt.OCI_MANIFEST
            assert r.headers["Docker-Content-Digest"] == d
            r = await c.head(f"/v2/lib/app/manifests/{ref}", headers={"Accept": OCI_ACCEPT})
            assert r.status == 200 and int(r.headers["Content-Length"]) == len(mbody)
            assert await r.read() == b""
        r = await c.get("/v2/lib/app/manifests/nope")
        assert r.status == 404 and await codes(r) == ["MANIFEST_UNKNOWN"]
        r = await c.get("/v2/lib/other/manifests/v1")  # distribution: MANIFEST_UNKNOWN
        assert r.status == 404 and await codes(r) == ["MANIFEST_UNKNOWN"]
        r = await c.get("/v2/lib/app/manifests/sha256:beef")
        assert r.status == 400 and await codes(r) == ["DIGEST_INVALID"]
        # several tags at once with ?tag=
        r = await c.put(
            f"/v2/lib/app/manifests/{d}?tag=a&tag=b",
            data=mbody,
            headers={"Content-Type": mt.OCI_MANIFEST},
        )
        assert r.status == 201
        r = await c.get("/v2/lib/app/tags/list")
        assert (await r.json())["tags"] == ["a", "b", "v1"]

    in_process(cfg(tmp_path), body)


def test_content_negotiation(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        _m, _mbody = await push_image(c, "n", "oci")
        _dm, dbody = await push_image(c, "n", "docker", docker=True)
        # OCI manifest to a client that only takes Docker schema 2: 404, as distribution
        r = await c.get("/v2/n/manifests/oci", headers={"Accept": mt.DOCKER_MANIFEST})
        assert r.status == 404 and await codes(r) == ["MANIFEST_UNKNOWN"]
        # wildcards and no Accept at all: served as stored
        for accept in ("*/*", "application/*", None):
            headers = {"Accept": accept} if accept else {}
            r = await c.get("/v2/n/manifests/oci", headers=headers)
            assert r.status == 200 and r.headers["Content-Type"] == mt.OCI_MANIFEST
        # q=0 excludes a type
        r = await c.get("/v2/n/manifests/docker", headers={"Accept": f"{mt.DOCKER_MANIFEST};q=0"})
        assert r.status == 404
        r = await c.get("/v2/n/manifests/docker", headers={"Accept": mt.DOCKER_MANIFEST})
        assert r.status == 200 and r.headers["Content-Type"] == mt.DOCKER_MANIFEST
        # an index to a client that takes no indexes: its linux/amd64 manifest (by tag)
        idx = Index(
            manifests=(
                Descriptor(
                    mt.DOCKER_MANIFEST, sha(dbody), len(dbody), platform=Platform("linux", "amd64")
                ),
            ),
            media_type=mt.DOCKER_MANIFEST_LIST,
        )
        ibody = idx.to_json()
        r = await c.put(
            "/v2/n/manifests/list", data=ibody, headers={"Content-Type": idx.media_type}
        )
        assert r.status == 201
        r = await c.get("/v2/n/manifests/list", headers={"Accept": mt.DOCKER_MANIFEST})
        assert r.status == 200 and await r.read() == dbody
        assert r.headers["Docker-Content-Digest"] == sha(dbody)
        r = await c.get("/v2/n/manifests/list", headers={"Accept": OCI_ACCEPT})
        assert await r.read() == ibody and r.headers["Content-Type"] == mt.DOCKER_MANIFEST_LIST

    in_process(cfg(tmp_path), body)


def test_manifest_validation(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        cfgb = b'{"os":"linux"}'
        layer = gzip.compress(b"layer", mtime=0)
        m = image_manifest(cfgb, [layer])
        mbody = m.to_json()
        ct = {"Content-Type": mt.OCI_MANIFEST}
        # blobs not pushed yet
        r = await c.put("/v2/v/manifests/t", data=mbody, headers=ct)
        assert r.status == 400 and await codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
        await push_blob(c, "v", cfgb)
        await push_blob(c, "v", layer)
        # blobs pushed to another repository do not count
        r = await c.put("/v2/other/manifests/t", data=mbody, headers=ct)
        assert r.status == 400 and await codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
        # not JSON, not an object, wrong schema, schema 1
        for bad in [
            b"not json",
            b"[]",
            b'{"schemaVersion": 2}',
            b'{"schemaVersion":1,"fsLayers":[]}',
        ]:
            r = await c.put("/v2/v/manifests/t", data=bad, headers=ct)
            assert r.status == 400 and await codes(r) == ["MANIFEST_INVALID"], bad
        # Content-Type that contradicts the document
        r = await c.put(
            "/v2/v/manifests/t", data=mbody, headers={"Content-Type": mt.DOCKER_MANIFEST}
        )
        assert r.status == 400 and await codes(r) == ["MANIFEST_INVALID"]
        # a descriptor whose size lies
        doc = json.loads(mbody)
        doc["layers"][0]["size"] += 1
        r = await c.put("/v2/v/manifests/t", data=json.dumps(doc).encode(), headers=ct)
        assert r.status == 400 and await codes(r) == ["MANIFEST_INVALID"]
        # oversized (> 4 MiB)
        big = json.loads(mbody)
        big["annotations"] = {"pad": "x" * (4 * 1024 * 1024)}
        r = await c.put("/v2/v/manifests/t", data=json.dumps(big).encode(), headers=ct)
        assert r.status == 413 and await codes(r) == ["MANIFEST_INVALID"]
        # a digest reference that does not match the body
        r = await c.put(f"/v2/v/manifests/{sha(b'x')}", data=mbody, headers=ct)
        assert r.status == 400 and await codes(r) == ["DIGEST_INVALID"]
        # an invalid tag in ?tag=
        r = await c.put(f"/v2/v/manifests/{sha(mbody)}?tag=-bad", data=mbody, headers=ct)
        assert r.status == 400
        # an index whose child is unknown
        idx = Index(manifests=(Descriptor(mt.OCI_MANIFEST, sha(b"child"), 5),))
        r = await c.put(
            "/v2/v/manifests/i", data=idx.to_json(), headers={"Content-Type": mt.OCI_INDEX}
        )
        assert r.status == 400 and await codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
        # finally the good one
        r = await c.put("/v2/v/manifests/t", data=mbody, headers=ct)
        assert r.status == 201

    in_process(cfg(tmp_path), body)


def test_nondistributable_layer_and_embedded_empty_config(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        foreign = Descriptor(
            mt.OCI_LAYER_NONDIST_GZIP, sha(b"windows base"), 12, urls=("https://example.com/base",)
        )
        empty = Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), 2, data=b"{}")
        m = Manifest(config=empty, layers=(foreign,), artifact_type="application/x.test")
        r = await c.put(
            "/v2/w/manifests/t", data=m.to_json(), headers={"Content-Type": mt.OCI_MANIFEST}
        )
        assert r.status == 201, await r.text()
        r = await c.get(f"/v2/w/blobs/{mt.EMPTY_DIGEST}")
        assert await r.read() == b"{}"
        # a non-distributable layer without URLs must have been pushed
        m2 = Manifest(config=empty, layers=(Descriptor(mt.OCI_LAYER_NONDIST_GZIP, sha(b"y"), 1),))
        r = await c.put(
            "/v2/w/manifests/t2", data=m2.to_json(), headers={"Content-Type": mt.OCI_MANIFEST}
        )
        assert r.status == 400 and await codes(r) == ["MANIFEST_BLOB_UNKNOWN"]

    in_process(cfg(tmp_path), body)


def test_delete_tag_manifest_blob(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        m, mbody = await push_image(c, "d", "t1")
        d = sha(mbody)
        r = await c.put(
            f"/v2/d/manifests/{d}?tag=t2", data=mbody, headers={"Content-Type": mt.OCI_MANIFEST}
        )
        # delete only the tag: the manifest stays reachable by digest and by t2
        r = await c.delete("/v2/d/manifests/t1")
        assert r.status == 202
        r = await c.get("/v2/d/manifests/t1")
        assert r.status == 404
        r = await c.get(f"/v2/d/manifests/{d}")
        assert r.status == 200
        r = await c.delete("/v2/d/manifests/t1")
        assert r.status == 404 and await codes(r) == ["MANIFEST_UNKNOWN"]
        # delete the manifest: its remaining tags go with it
        r = await c.delete(f"/v2/d/manifests/{d}")
        assert r.status == 202
        r = await c.get("/v2/d/manifests/t2")
        assert r.status == 404
        r = await c.get("/v2/d/tags/list")
        assert (await r.json())["tags"] == []
        r = await c.delete(f"/v2/d/manifests/{d}")
        assert r.status == 404
        # blob delete unlinks it from the repository
        layer = m.layers[0].digest
        r = await c.delete(f"/v2/d/blobs/{layer}")
        assert r.status == 202
        r = await c.head(f"/v2/d/blobs/{layer}")
        assert r.status == 404
        r = await c.delete(f"/v2/d/blobs/{layer}")
        assert r.status == 404 and await codes(r) == ["BLOB_UNKNOWN"]

    in_process(cfg(tmp_path), body)


def test_delete_disabled_and_read_only(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        _, _mbody = await push_image(c, "d", "t")
        r = await c.delete("/v2/d/manifests/t")
        assert r.status == 405 and await codes(r) == ["UNSUPPORTED"]

    in_process(cfg(tmp_path, delete_enabled=False), body)

    async def ro(c: Any) -> None:
        r = await c.get("/v2/d/manifests/t")
        assert r.status == 200
        r = await c.post("/v2/d/blobs/uploads/")
        assert r.status == 405 and await codes(r) == ["UNSUPPORTED"]
        r = await c.delete("/v2/d/manifests/t")
        assert r.status == 405

    in_process(cfg(tmp_path, readonly=True), ro)


def test_tags_and_catalog_pagination(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        _, mbody = await push_image(c, "p/one", "a")
        d = sha(mbody)
        r = await c.put(
            f"/v2/p/one/manifests/{d}?" + "&".join(f"tag={t}" for t in ["b", "c", "d", "e"]),
            data=mbody,
            headers={"Content-Type": mt.OCI_MANIFEST},
        )
        assert r.status == 201
        r = await c.get("/v2/p/one/tags/list?n=2")
        assert (await r.json())["tags"] == ["a", "b"]
        assert r.headers["Link"] == '</v2/p/one/tags/list?n=2&last=b>; rel="next"'
        r = await c.get("/v2/p/one/tags/list?n=2&last=b")
        assert (await r.json())["tags"] == ["c", "d"]
        r = await c.get("/v2/p/one/tags/list?n=2&last=d")
        assert (await r.json())["tags"] == ["e"] and "Link" not in r.headers
        r = await c.get("/v2/p/one/tags/list?n=0")
        assert (await r.json())["tags"] == [] and "Link" not in r.headers
        r = await c.get("/v2/p/one/tags/list?last=c")
        assert (await r.json())["tags"] == ["d", "e"]
        r = await c.get("/v2/p/one/tags/list?n=-1")
        assert r.status == 400 and await codes(r) == ["PAGINATION_NUMBER_INVALID"]
        r = await c.get("/v2/nothere/tags/list")
        assert r.status == 404 and await codes(r) == ["NAME_UNKNOWN"]
        for name in ["p/two", "p/three", "q"]:
            await push_image(c, name, "x")
        r = await c.get("/v2/_catalog")
        assert (await r.json())["repositories"] == ["p/one", "p/three", "p/two", "q"]
        r = await c.get("/v2/_catalog?n=3")
        assert (await r.json())["repositories"] == ["p/one", "p/three", "p/two"]
        assert r.headers["Link"] == '</v2/_catalog?n=3&last=p/two>; rel="next"'
        r = await c.get("/v2/_catalog?n=3&last=p/two")
        assert (await r.json())["repositories"] == ["q"]

    in_process(cfg(tmp_path), body)


def test_cross_repository_mount(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        d = await push_blob(c, "src", b"shared layer")
        r = await c.post(f"/v2/dst/blobs/uploads/?mount={d}&from=src")
        assert r.status == 201 and r.headers["Location"] == f"/v2/dst/blobs/{d}"
        r = await c.get(f"/v2/dst/blobs/{d}")
        assert await r.read() == b"shared layer"
        # the source lacks it: an upload session instead
        missing = sha(b"missing")
        r = await c.post(f"/v2/dst2/blobs/uploads/?mount={missing}&from=src")
        assert r.status == 202 and "/blobs/uploads/" in r.headers["Location"]
        r = await c.post("/v2/dst2/blobs/uploads/?mount=sha256:bad&from=src")
        assert r.status == 400 and await codes(r) == ["DIGEST_INVALID"]
        r = await c.post(f"/v2/dst2/blobs/uploads/?mount={d}&from=Bad..Name")
        assert r.status == 400 and await codes(r) == ["NAME_INVALID"]

    in_process(cfg(tmp_path), body)


def test_referrers(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        _, mbody = await push_image(c, "r", "v1")
        subject = Descriptor(mt.OCI_MANIFEST, sha(mbody), len(mbody))
        empty = Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), 2)
        await push_blob(c, "r", b"{}")
        sig = await push_blob(c, "r", b"signature")
        sbom = await push_blob(c, "r", b"sbom")
        refs = []
        for art, blob, note in [("application/x.sig", sig, "s"), ("application/x.sbom", sbom, "b")]:
            a = Manifest(
                config=empty,
                layers=(
                    Descriptor(
                        "application/octet-stream", blob, len(note) + (8 if note == "s" else 3)
                    ),
                ),
                artifact_type=art,
                subject=subject,
                annotations={"note": note},
            )
            body_ = a.to_json()
            r = await c.put(
                f"/v2/r/manifests/{sha(body_)}",
                data=body_,
                headers={"Content-Type": mt.OCI_MANIFEST},
            )
            assert r.status == 201, await r.text()
            assert r.headers["OCI-Subject"] == subject.digest
            refs.append((art, sha(body_), len(body_)))
        r = await c.get(f"/v2/r/referrers/{subject.digest}")
        assert r.status == 200 and r.headers["Content-Type"] == mt.OCI_INDEX
        doc = await r.json(content_type=None)
        assert doc["mediaType"] == mt.OCI_INDEX and doc["schemaVersion"] == 2
        got = {(m["artifactType"], m["digest"], m["size"]) for m in doc["manifests"]}
        assert got == set(refs)
        assert all(m["mediaType"] == mt.OCI_MANIFEST for m in doc["manifests"])
        r = await c.get(f"/v2/r/referrers/{subject.digest}?artifactType=application/x.sbom")
        assert r.headers["OCI-Filters-Applied"] == "artifactType"
        doc = await r.json(content_type=None)
        assert [m["digest"] for m in doc["manifests"]] == [refs[1][1]]
        assert doc["manifests"][0]["annotations"] == {"note": "b"}
        # unknown subject: an empty index, not 404
        r = await c.get(f"/v2/r/referrers/{sha(b'nothing')}")
        assert r.status == 200 and (await r.json(content_type=None))["manifests"] == []
        r = await c.get("/v2/r/referrers/sha256:zz")
        assert r.status == 400 and await codes(r) == ["DIGEST_INVALID"]
        # deleting a referrer removes it from the list
        r = await c.delete(f"/v2/r/manifests/{refs[0][1]}")
        assert r.status == 202
        r = await c.get(f"/v2/r/referrers/{subject.digest}")
        assert [m["digest"] for m in (await r.json(content_type=None))["manifests"]] == [refs[1][1]]

    in_process(cfg(tmp_path), body)


def test_names_are_validated(tmp_path: Path) -> None:
    d = sha(b"x")

    async def body(c: Any) -> None:
        for name in ["UPPER/case", "a" * 256, "a/" * 128 + "b", "a..b", "-a", "a/_layers"]:
            r = await c.get(f"/v2/{name}/tags/list")
            assert r.status in (400, 404), name
            if r.status == 400:
                assert await codes(r) == ["NAME_INVALID"], name
        r = await c.post(f"/v2/{'a' * 256}/blobs/uploads/?digest={d}", data=b"x")
        assert r.status == 400 and await codes(r) == ["NAME_INVALID"]
        r = await c.get("/v2/nope/nope")
        assert r.status == 404

    in_process(cfg(tmp_path), body)


def test_raw_dot_dot_paths_never_escape(tmp_path: Path) -> None:
    """Encoded and plain ``..`` sent byte for byte (no client-side normalisation)."""
    secret = tmp_path / "secret"
    secret.write_text("nope")
    with registry_process(tmp_path, "--data", str(tmp_path / "data"), "-q") as (addr, _):
        port = int(addr.split(":")[1])
        for path in [
            b"/v2/a/%2e%2e/%2e%2e/%2e%2e/secret/tags/list",
            b"/v2/%2e%2e/manifests/latest",
            b"/v2/a/../../secret/tags/list",
            b"/v2/a%2F..%2F..%2Fsecret/tags/list",
            b"/v2/a/blobs/uploads/..%2F..%2F..%2Fsecret",
            b"/v2/a/manifests/..%2F..%2Fsecret",
        ]:
            status, body = raw_request(
                port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert status in (400, 404), path
            assert b"nope" not in body
            if status == 400:
                assert json.loads(body)["errors"][0]["code"] in ("NAME_INVALID", "DIGEST_INVALID")


def test_rate_limit(tmp_path: Path) -> None:
    async def body(c: Any) -> None:
        statuses = [(await c.get("/v2/")).status for _ in range(5)]
        assert statuses[:3] == [200, 200, 200]
        r = await c.get("/v2/")
        assert r.status == 429 and await codes(r) == ["TOOMANYREQUESTS"]
        assert int(r.headers["Retry-After"]) >= 1

    in_process(cfg(tmp_path, rate=0.5, burst=3), body)


def test_webhook_notifications(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []

    async def main() -> None:
        async def hook(request: web.Request) -> web.Response:
            assert (
                request.headers["Content-Type"]
                == "application/vnd.docker.distribution.events.v1+json"
            )
            events.extend((await request.json())["events"])
            return web.Response(status=200)

        hook_app = web.Application()
        hook_app.router.add_post("/events", hook)
        runner = web.AppRunner(hook_app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            from aiohttp.test_utils import TestClient, TestServer

            from gantry.registry import make_app

            app = make_app(
                cfg(tmp_path, notifications=[Endpoint(url=f"http://127.0.0.1:{port}/events")])
            )
            async with TestClient(TestServer(app)) as c:
                _, _mbody = await push_image(c, "hooked", "v1")
                r = await c.delete("/v2/hooked/manifests/v1")
                assert r.status == 202
                for _ in range(100):
                    if any(e["action"] == "delete" for e in events):
                        break
                    await asyncio.sleep(0.05)
        finally:
            await runner.cleanup()

    asyncio.run(main())
    pushes = [e for e in events if e["action"] == "push" and e["target"].get("tag") == "v1"]
    assert len(pushes) == 1
    assert pushes[0]["target"]["repository"] == "hooked"
    assert pushes[0]["target"]["mediaType"] == mt.OCI_MANIFEST
    assert any(e["action"] == "delete" and e["target"].get("tag") == "v1" for e in events)


async def errors_of(r: Any) -> list[dict[str, Any]]:
    doc: dict[str, list[dict[str, Any]]] = await r.json(content_type=None)
    return doc["errors"]


def test_error_bodies_read_as_distributions(tmp_path: Path) -> None:
    """message is the code's fixed text (clients show "<code>: <message>"); what the error
    is about is in detail, shaped as distribution 2.8 marshals its Go errors."""

    async def body(c: Any) -> None:
        _, raw = await push_image(c, "lib/app", "v1")
        digest = sha(raw)
        zero = "sha256:" + "0" * 64
        cases: list[tuple[str, str, int, str, str, Any]] = [
            (
                "GET",
                "/v2/lib/app/manifests/nope",
                404,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
                {"Tag": "nope"},
            ),
            (
                "GET",
                "/v2/nobody/here/manifests/1",
                404,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
                {"Tag": "1"},
            ),
            (
                "GET",
                f"/v2/lib/app/manifests/{zero}",
                404,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
                {"Name": "lib/app", "Revision": zero},
            ),
            (
                "GET",
                f"/v2/lib/other/manifests/{digest}",
                404,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
                {"Name": "lib/other", "Revision": str(digest)},
            ),
            (
                "GET",
                f"/v2/lib/app/blobs/{zero}",
                404,
                "BLOB_UNKNOWN",
                "blob unknown to registry",
                zero,
            ),
            (
                "GET",
                "/v2/nobody/tags/list",
                404,
                "NAME_UNKNOWN",
                "repository name not known to registry",
                {"name": "nobody"},
            ),
            (
                "GET",
                "/v2/lib/app/tags/list?n=x",
                400,
                "PAGINATION_NUMBER_INVALID",
                "invalid number of results requested",
                {"n": "x"},
            ),
            ("GET", "/v2/Upper/manifests/1", 400, "NAME_INVALID", "invalid repository name", None),
            (
                "GET",
                "/v2/lib/app/blobs/uploads/not-a-uuid",
                404,
                "BLOB_UPLOAD_UNKNOWN",
                "blob upload unknown to registry",
                None,
            ),
            (
                "PATCH",
                "/v2/lib/app/blobs/sha256:abc",
                405,
                "UNSUPPORTED",
                "The operation is unsupported.",
                None,
            ),
        ]
        for method, path, status, code, message, detail in cases:
            r = await c.request(method, path)
            assert r.status == status, path
            [err] = await errors_of(r)
            assert (err["code"], err["message"]) == (code, message), path
            if detail is not None:
                assert err["detail"] == detail, path
        layer = sha(b"never pushed")
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": layer,
                "size": 12,
            },
            "layers": [],
        }
        r = await c.put(
            "/v2/lib/app/manifests/v2",
            data=json.dumps(manifest).encode(),
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        [err] = await errors_of(r)
        assert r.status == 400
        assert err == {
            "code": "MANIFEST_BLOB_UNKNOWN",
            "message": "blob unknown to registry",
            "detail": layer,
        }

    in_process(cfg(tmp_path), body)


def test_unauthorized_detail_lists_the_access_needed(tmp_path: Path) -> None:
    """As distribution: 401's detail is the access records the request needed."""
    from gantry.registry.htpasswd import hash_password

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"u:{hash_password('p', rounds=4)}\n")
    config = cfg(tmp_path, htpasswd=HtpasswdConfig(path=htpasswd, realm="r"))

    async def body(c: Any) -> None:
        r = await c.get("/v2/lib/app/manifests/v1")
        assert r.status == 401
        [err] = await errors_of(r)
        assert err == {
            "code": "UNAUTHORIZED",
            "message": "authentication required",
            "detail": [{"Type": "repository", "Class": "", "Name": "lib/app", "Action": "pull"}],
        }

    in_process(config, body)
