"""The S3 driver: the registry's data in a bucket of any S3-compatible service.

S3 has no append and no rename, so two things are built on top:

* An appendable file (an upload's data) is a base object plus parts at
  ``<key>@parts/<offset>``; each request that appends writes one part (a
  multipart upload of its own when large). Its size is the sum, and any server
  sharing the bucket sees the same state -- the server keeps none.
* ``move`` is a server-side copy (``CopyObject``, or a multipart upload of
  ``UploadPartCopy`` ranges when the source is in parts or above 5 GiB;
  small pieces are read and re-sent so that every part but the last is at
  least 5 MiB), then a delete of the source.
"""

from __future__ import annotations

import builtins
import io
from collections.abc import Iterator
from typing import Any, BinaryIO

from gantry.errors import StoreError

from ..config import S3Config
from .base import FileInfo, FileWriter, PathNotFound, StorageDriver

MIN_PART = 5 << 20
MAX_COPY = 5 << 30
PARTS = "@parts"


def _is_missing(err: Exception) -> bool:
    code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchUpload")


class _S3Writer(FileWriter):
    def __init__(self, driver: S3Driver, key: str, start: int, *, append: bool = False) -> None:
        self._d = driver
        self._append = append
        self._key = key
        self._start = start
        self._written = 0
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._done = False

    @property
    def size(self) -> int:
        return self._start + self._written

    def write(self, data: bytes) -> None:
        self._buf += data
        self._written += len(data)
        if len(self._buf) >= self._d.chunk_size:
            self._flush_part()

    def _flush_part(self) -> None:
        c = self._d.client
        if self._upload_id is None:
            self._upload_id = c.create_multipart_upload(Bucket=self._d.bucket, Key=self._key)[
                "UploadId"
            ]
        n = len(self._parts) + 1
        r = c.upload_part(
            Bucket=self._d.bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=n,
            Body=bytes(self._buf),
        )
        self._parts.append({"ETag": r["ETag"], "PartNumber": n})
        self._buf.clear()

    def commit(self) -> None:
        if self._done:
            return
        self._done = True
        c = self._d.client
        if self._upload_id is None:
            if self._buf or not self._append:
                c.put_object(Bucket=self._d.bucket, Key=self._key, Body=bytes(self._buf))
            return
        if self._buf:
            self._flush_part()
        c.complete_multipart_upload(
            Bucket=self._d.bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def cancel(self) -> None:
        if self._done:
            return
        self._done = True
        if self._upload_id is not None:
            try:
                self._d.client.abort_multipart_upload(
                    Bucket=self._d.bucket, Key=self._key, UploadId=self._upload_id
                )
            except Exception:
                pass


class _ChainReader(io.RawIOBase):
    """Reads a list of (key, offset, length) ranges as one stream."""

    def __init__(self, driver: S3Driver, pieces: list[tuple[str, int, int]]) -> None:
        self._d = driver
        self._pieces = [p for p in pieces if p[2] > 0]
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while True:
            if self._body is None:
                if not self._pieces:
                    return 0
                key, off, length = self._pieces.pop(0)
                r = self._d.client.get_object(
                    Bucket=self._d.bucket, Key=key, Range=f"bytes={off}-{off + length - 1}"
                )
                self._body = r["Body"]
            data = self._body.read(len(buf))
            if data:
                n = len(data)
                buf[:n] = data
                return n
            self._body.close()
            self._body = None

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None
        super().close()


class S3Driver(StorageDriver):
    name = "s3"
    blocking = True

    def __init__(self, cfg: S3Config) -> None:
        import boto3
        from botocore.config import Config

        self.cfg = cfg
        self.bucket = cfg.bucket
        self.prefix = cfg.prefix.strip("/")
        self.chunk_size = max(cfg.chunk_size, MIN_PART)
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=cfg.endpoint,
            region_name=cfg.region,
            aws_access_key_id=cfg.access_key,
            aws_secret_access_key=cfg.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=32,
            ),
        )
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as e:
            if not _is_missing(e):
                raise StoreError(f"cannot use S3 bucket {self.bucket}: {e}") from None
            kw: dict[str, Any] = {"Bucket": self.bucket}
            if cfg.region and cfg.region != "us-east-1":
                kw["CreateBucketConfiguration"] = {"LocationConstraint": cfg.region}
            self.client.create_bucket(**kw)

    # ------------------------------------------------------------------ keys
    def _key(self, path: str) -> str:
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ValueError(f"unsafe storage path: {path!r}")
        joined = "/".join(parts)
        return f"{self.prefix}/{joined}" if self.prefix else joined

    def _rel(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    def _list_keys(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            r: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
            return r
        except Exception as e:
            if _is_missing(e):
                return None
            raise

    def _pieces(self, key: str) -> list[tuple[str, int, float]]:
        """(key, size, mtime) of a file and its appended parts, in order; [] if missing."""
        out: list[tuple[str, int, float]] = []
        head = self._head(key)
        if head is not None:
            out.append((key, int(head["ContentLength"]), head["LastModified"].timestamp()))
        parts = sorted(self._list_keys(f"{key}{PARTS}/"), key=lambda o: o["Key"])
        for o in parts:
            out.append((o["Key"], int(o["Size"]), o["LastModified"].timestamp()))
        if head is None and not parts:
            return []
        return out

    # ----------------------------------------------------------- interface
    def get_content(self, path: str) -> bytes:
        key = self._key(path)
        pieces = self._pieces(key)
        if not pieces:
            raise PathNotFound(path)
        if len(pieces) == 1:
            try:
                data: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                return data
            except Exception as e:
                if _is_missing(e):
                    raise PathNotFound(path) from None
                raise
        with self.reader(path) as f:
            return f.read()

    def put_content(self, path: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(path), Body=data)

    def stat(self, path: str) -> FileInfo:
        key = self._key(path)
        pieces = self._pieces(key)
        if pieces:
            return FileInfo(path, sum(p[1] for p in pieces), max(p[2] for p in pieces))
        r = self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=f"{key}/" if key else "", MaxKeys=1
        )
        if r.get("KeyCount", 0) > 0:
            return FileInfo(path, 0, 0.0, is_dir=True)
        raise PathNotFound(path)

    def list(self, path: str) -> list[str]:
        key = self._key(path)
        prefix = f"{key}/" if key else ""
        names: set[str] = set()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                n = cp["Prefix"][len(prefix) :].rstrip("/")
                names.add(n[: -len(PARTS)] if n.endswith(PARTS) else n)
            for o in page.get("Contents", []):
                names.add(o["Key"][len(prefix) :])
        if not names:
            raise PathNotFound(path)
        return list(names)

    def delete(self, path: str) -> None:
        key = self._key(path)
        if not key:
            raise ValueError("refusing to delete the storage root")
        keys = [key] if self._head(key) is not None else []
        keys += [o["Key"] for o in self._list_keys(f"{key}/")]
        keys += [o["Key"] for o in self._list_keys(f"{key}{PARTS}/")]
        if not keys:
            raise PathNotFound(path)
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True},
            )

    def move(self, src: str, dst: str) -> None:
        skey, dkey = self._key(src), self._key(dst)
        pieces = [p for p in self._pieces(skey) if p[1] > 0] or self._pieces(skey)[:1]
        if not pieces:
            raise PathNotFound(src)
        if len(pieces) == 1 and pieces[0][1] <= MAX_COPY:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=dkey,
                CopySource={"Bucket": self.bucket, "Key": pieces[0][0]},
            )
        else:
            self._compose(dkey, [(k, s) for k, s, _ in pieces])
        self.delete(src)

    def _compose(self, dkey: str, pieces: builtins.list[tuple[str, int]]) -> None:
        """Concatenate objects into ``dkey`` with a multipart upload, copying server-side."""
        c = self.client
        upload_id = c.create_multipart_upload(Bucket=self.bucket, Key=dkey)["UploadId"]
        parts: list[dict[str, Any]] = []
        buf = bytearray()

        def send_buf() -> None:
            n = len(parts) + 1
            r = c.upload_part(
                Bucket=self.bucket, Key=dkey, UploadId=upload_id, PartNumber=n, Body=bytes(buf)
            )
            parts.append({"ETag": r["ETag"], "PartNumber": n})
            buf.clear()

        def read(key: str, first: int, last: int) -> bytes:
            r = c.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={first}-{last}")
            data: bytes = r["Body"].read()
            return data

        try:
            for key, size in pieces:
                off = 0
                if buf:  # top the buffer up to a legal part size from this piece
                    take = min(size, max(0, self.chunk_size - len(buf)))
                    if take:
                        buf += read(key, 0, take - 1)
                        off = take
                    if len(buf) >= MIN_PART:
                        send_buf()
                while size - off >= MIN_PART:
                    end = min(size, off + MAX_COPY) - 1
                    if size - (end + 1) and size - (end + 1) < MIN_PART:
                        end = size - 1  # do not leave a runt behind
                    n = len(parts) + 1
                    r = c.upload_part_copy(
                        Bucket=self.bucket,
                        Key=dkey,
                        UploadId=upload_id,
                        PartNumber=n,
                        CopySource={"Bucket": self.bucket, "Key": key},
                        CopySourceRange=f"bytes={off}-{end}",
                    )
                    parts.append({"ETag": r["CopyPartResult"]["ETag"], "PartNumber": n})
                    off = end + 1
                if off < size:
                    buf += read(key, off, size - 1)
                    if len(buf) >= self.chunk_size:
                        send_buf()
            if buf or not parts:
                send_buf()
            c.complete_multipart_upload(
                Bucket=self.bucket, Key=dkey, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            c.abort_multipart_upload(Bucket=self.bucket, Key=dkey, UploadId=upload_id)
            raise

    def writer(self, path: str, *, append: bool = False) -> FileWriter:
        key = self._key(path)
        if not append:
            return _S3Writer(self, key, 0)
        pieces = self._pieces(key)
        start = sum(p[1] for p in pieces)
        if not pieces:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"")
        return _S3Writer(self, f"{key}{PARTS}/{start:020d}", start, append=True)

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        pieces = self._pieces(self._key(path))
        if not pieces:
            raise PathNotFound(path)
        total = sum(p[1] for p in pieces)
        end = total if length is None else min(total, offset + length)
        ranges: list[tuple[str, int, int]] = []
        pos = 0
        for key, size, _ in pieces:
            lo, hi = max(offset, pos), min(end, pos + size)
            if hi > lo:
                ranges.append((key, lo - pos, hi - lo))
            pos += size
        return io.BufferedReader(_ChainReader(self, ranges), 1 << 20)

    def walk(self, path: str) -> Iterator[FileInfo]:
        key = self._key(path)
        for o in self._list_keys(f"{key}/" if key else ""):
            k = o["Key"]
            if f"{PARTS}/" in k:
                continue
            yield FileInfo(self._rel(k), int(o["Size"]), o["LastModified"].timestamp())

    def redirect_url(self, path: str, method: str = "GET") -> str | None:
        if not self.cfg.redirect:
            return None
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(path)}, ExpiresIn=1200
        )
        return url

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:
            pass
