"""The referrers API in pages: ``n``, ``last`` and ``Link: <...>; rel="next"``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gantry.digest import Digest
from gantry.oci import mediatypes as mt
from gantry.oci.descriptor import Descriptor
from gantry.oci.manifest import Manifest
from gantry.registry import RegistryConfig
from gantry.registry.backend import Backend
from gantry.registry.storage import open_driver
from test_registry_support import in_process, push_blob, push_image, sha

SIG, SBOM = "application/x.sig", "application/x.sbom"


def cfg(tmp_path: Path) -> RegistryConfig:
    return RegistryConfig(data=tmp_path / "data", fsync=False, access_log=False)


async def push_referrers(c: Any, types: list[str]) -> tuple[Digest, list[tuple[str, str]]]:
    """A subject image in ``r`` and one artifact per entry of ``types`` referring to it;
    returns the subject and (artifactType, digest) of each artifact."""
    _, mbody = await push_image(c, "r", "v1")
    subject = Descriptor(mt.OCI_MANIFEST, sha(mbody), len(mbody))
    empty = Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), 2)
    await push_blob(c, "r", b"{}")
    out = []
    for i, art in enumerate(types):
        blob = f"artifact {i}".encode()
        d = await push_blob(c, "r", blob)
        m = Manifest(
            config=empty,
            layers=(Descriptor("application/octet-stream", d, len(blob)),),
            artifact_type=art,
            subject=subject,
            annotations={"i": str(i)},
        )
        body = m.to_json()
        r = await c.put(
            f"/v2/r/manifests/{sha(body)}", data=body, headers={"Content-Type": mt.OCI_MANIFEST}
        )
        assert r.status == 201, await r.text()
        out.append((art, str(sha(body))))
    return subject.digest, out


async def walk(c: Any, url: str) -> tuple[list[list[str]], list[Any]]:
    """Follow rel="next" from ``url``: the digests of each page, and each response."""
    pages, responses = [], []
    next_url: str | None = url
    while next_url is not None:
        r = await c.get(next_url)
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"] == mt.OCI_INDEX
        doc = await r.json(content_type=None)
        pages.append([m["digest"] for m in doc["manifests"]])
        responses.append(r)
        link = r.headers.get("Link")
        next_url = None
        if link is not None:
            m = re.fullmatch(r'<(/v2/[^>]+)>; rel="next"', link)
            assert m, link
            next_url = m.group(1)
        assert len(pages) < 20, "the Link chain does not end"
    return pages, responses


def test_referrers_pages_follow_link_headers(tmp_path: Path) -> None:
    types = [SIG, SBOM, SBOM, SIG, SBOM, SIG, SBOM]

    async def body(c: Any) -> None:
        subject, arts = await push_referrers(c, types)
        every = sorted(d for _, d in arts)
        sboms = sorted(d for t, d in arts if t == SBOM)
        base = f"/v2/r/referrers/{subject}"
        # no n: everything in one page, no Link
        pages, rs = await walk(c, base)
        assert pages == [every] and "Link" not in rs[0].headers
        # n=2: pages of two in digest order, nothing twice, nothing lost
        pages, rs = await walk(c, f"{base}?n=2")
        assert [len(p) for p in pages] == [2, 2, 2, 1]
        assert [d for p in pages for d in p] == every
        assert rs[0].headers["Link"] == f'<{base}?n=2&last={every[1]}>; rel="next"'
        # the filter applies before paging, and the Link carries it on
        pages, rs = await walk(c, f"{base}?n=3&artifactType={SBOM}")
        assert pages == [sboms[:3], sboms[3:]]
        assert all(r.headers["OCI-Filters-Applied"] == "artifactType" for r in rs)
        assert f"&artifactType={SBOM}>" in rs[0].headers["Link"]
        # a page that ends exactly at the last match says there is no next one
        pages, rs = await walk(c, f"{base}?n=4&artifactType={SBOM}")
        assert pages == [sboms] and "Link" not in rs[0].headers
        # resuming after a digest that is not (or no longer) there still works
        r = await c.get(f"{base}?last={sha(b'gone')}")
        doc = await r.json(content_type=None)
        assert [m["digest"] for m in doc["manifests"]] == [d for d in every if d > sha(b"gone")]
        # n=0: an empty page, no Link
        pages, rs = await walk(c, f"{base}?n=0")
        assert pages == [[]] and "Link" not in rs[0].headers
        for bad, code in [("n=-1", "PAGINATION_NUMBER_INVALID"), ("last=nope", "DIGEST_INVALID")]:
            r = await c.get(f"{base}?{bad}")
            assert r.status == 400
            assert (await r.json(content_type=None))["errors"][0]["code"] == code

    in_process(cfg(tmp_path), body)


def test_referrers_page_stays_under_its_byte_budget(tmp_path: Path) -> None:
    """A page ends before its JSON would pass ``max_bytes`` (but holds at least one
    descriptor, so a client always gets on)."""
    state: dict[str, Any] = {}

    async def body(c: Any) -> None:
        state["subject"], state["arts"] = await push_referrers(c, [SIG] * 5)

    config = cfg(tmp_path)
    in_process(config, body)
    backend = Backend(open_driver(config))
    subject, arts = state["subject"], state["arts"]
    every = sorted(d for _, d in arts)
    one, _ = backend.referrers_page("r", subject, None, limit=1)
    size = len(str(one[0]))  # about one descriptor's JSON
    seen: list[str] = []
    last = None
    for _ in range(10):
        page, more = backend.referrers_page("r", subject, None, last=last, max_bytes=size * 2)
        assert 1 <= len(page) <= 2
        seen += [e["digest"] for e in page]
        if not more:
            break
        last = Digest(page[-1]["digest"])
    assert seen == every
    page, more = backend.referrers_page("r", subject, None, max_bytes=1)
    assert len(page) == 1 and more
