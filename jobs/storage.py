"""Where nightly results live: a local path or an object-store URI, behind one pyarrow filesystem.

``resolve("runs/nightly")`` and ``resolve("s3://bucket/nightly?endpoint_override=...")`` both give a
:class:`Location` whose ``fs``/``path`` pair is what ``pyarrow.dataset`` and ``pyarrow.parquet`` take,
so the history and the report code never branch on the kind of storage. URIs go through
``pyarrow.fs.FileSystem.from_uri`` (s3://, gs://, hdfs://, file://); credentials come from the
provider's usual environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS) and are never part of the URI
we print or store.
"""
from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow.fs as pafs

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class Location:
    """A directory (or file) on some pyarrow filesystem.

    ``path`` is the filesystem's own path (no scheme); ``display`` is what we show users: the local
    absolute path, or ``scheme://path`` without query parameters (which may carry endpoints).
    """

    fs: pafs.FileSystem
    path: str
    display: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def join(self, *parts: str) -> "Location":
        """The location ``parts`` below this one."""
        path = posixpath.join(self.path, *parts)
        display = os.path.join(self.display, *parts) if self.is_local else posixpath.join(self.display, *parts)
        return Location(self.fs, path, display)

    def exists(self) -> bool:
        return self.fs.get_file_info(self.path).type != pafs.FileType.NotFound

    def makedirs(self) -> None:
        self.fs.create_dir(self.path, recursive=True)

    def write_bytes(self, data: bytes) -> None:
        """Write ``data`` to this file, creating parent directories (a no-op on object stores)."""
        self.fs.create_dir(posixpath.dirname(self.path), recursive=True)
        with self.fs.open_output_stream(self.path) as out:
            out.write(data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def read_bytes(self) -> bytes:
        try:
            with self.fs.open_input_stream(self.path) as inp:
                return inp.read()
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{self.display}: no such file") from err

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")


def is_uri(location: str) -> bool:
    """True for ``scheme://...`` strings, False for plain local paths."""
    return bool(_SCHEME.match(location))


def resolve(location: str) -> Location:
    """Turn a local path or a filesystem URI into a :class:`Location`.

    Raises ValueError naming the location when pyarrow does not know the scheme or the URI is
    malformed (e.g. ``s3://`` without a bucket).
    """
    if not location:
        raise ValueError("empty storage location")
    if not is_uri(location):
        path = os.path.abspath(os.path.expanduser(location))
        return Location(pafs.LocalFileSystem(), path, path)
    try:
        fs, path = pafs.FileSystem.from_uri(location)
    except (ValueError, OSError) as err:
        raise ValueError(f"storage location {location!r}: {err}") from err
    parts = urlsplit(location)
    if not path.strip("/"):
        raise ValueError(f"storage location {location!r}: no bucket or path after the scheme")
    if isinstance(fs, pafs.LocalFileSystem):
        return Location(fs, path, path)
    return Location(fs, path.rstrip("/"), f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/"))
