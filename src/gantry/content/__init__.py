"""gantry.content: the content-addressed blob store (see :mod:`gantry.content.store`)."""

from gantry.content.store import BlobWriter, ContentStore, IngestStatus

__all__ = ["BlobWriter", "ContentStore", "IngestStatus"]
