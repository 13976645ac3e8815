"""BATCH messages: the Singer SDK's batch files, read as a stream of records.

A BATCH message names files (its ``manifest``) that hold a stream's records, one JSON object
per line (the SDK's ``jsonl`` encoding), gzip-compressed or not. A file is read in blocks, each
block decoded at once, so that memory holds one block's records and never a whole file.
"""

from __future__ import annotations

import gzip
import logging
import typing as t
import zlib

import msgspec
from singer_sdk.mapper import SameRecordTransform
from upath import UPath

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget
    from singer_sdk.mapper import StreamMap

logger = logging.getLogger(__name__)

BLOCK_BYTES = 1 << 20
"""How much of a batch file (uncompressed) is decoded at once."""
GZIP_MAGIC = b"\x1f\x8b"
SUPPORTED = "jsonl, with compression gzip or none"
NO_COMPRESSION = frozenset({None, "", "none"})

_DECODER = msgspec.json.Decoder(float_hook=float)


class BatchFileError(Exception):
    """A BATCH message or one of its files that cannot be loaded; the message says which."""


class UnsupportedMessageError(Exception):
    """A Singer message of a type this target does not handle."""


def describe(encoding: BaseBatchFileEncoding) -> str:
    """An encoding as text, e.g. ``jsonl+gzip``."""
    return f"{encoding.format}+{encoding.compression or 'none'}"


def check_message(message: Mapping[str, t.Any]) -> None:
    """Fail on a BATCH message that lacks a stream, an encoding or a manifest of file URLs.

    Raises:
        BatchFileError: naming what is missing or wrong.
    """
    stream = message.get("stream")
    encoding = message.get("encoding")
    manifest = message.get("manifest")
    if not isinstance(stream, str) or not stream:
        raise BatchFileError("a BATCH message has no `stream`: it cannot be loaded")
    if not isinstance(encoding, dict) or not isinstance(encoding.get("format"), str):
        msg = f'BATCH message of stream "{stream}" has no encoding format: expected {SUPPORTED}'
        raise BatchFileError(msg)
    unknown = sorted(set(encoding) - {"format", "compression"})
    if unknown:
        msg = (
            f'BATCH message of stream "{stream}": unsupported encoding settings '
            f"{', '.join(unknown)}: expected {SUPPORTED}"
        )
        raise BatchFileError(msg)
    if not isinstance(manifest, list) or not all(isinstance(u, str) for u in manifest):
        msg = f'BATCH message of stream "{stream}" has no manifest (a list of file URLs)'
        raise BatchFileError(msg)


def check_encoding(stream: str, encoding: BaseBatchFileEncoding, files: t.Sequence[str]) -> None:
    """Fail, before any file is read, on an encoding this target cannot read.

    Raises:
        BatchFileError: naming the stream, the files and the encoding.
    """
    if encoding.format == "jsonl" and (
        encoding.compression in NO_COMPRESSION or encoding.compression == "gzip"
    ):
        return
    names = ", ".join(files) or "no files"
    msg = (
        f'stream "{stream}": batch files {names} are encoded as {describe(encoding)}, which '
        f"this target cannot read: write batches as {SUPPORTED} (the tap's "
        "`batch_config.encoding`)"
    )
    raise BatchFileError(msg)


def check_stream_maps(stream: str, maps: t.Sequence[StreamMap]) -> None:
    """Fail when stream maps change a stream that arrives in batch files.

    Batch files are loaded as the tap wrote them, so a map that filters, transforms, renames
    or copies the stream would apply to its RECORDs and not to its batches.

    Raises:
        BatchFileError: naming the stream.
    """
    if all(isinstance(m, SameRecordTransform) and m.stream_alias == stream for m in maps):
        return
    msg = (
        f'stream "{stream}" arrives in BATCH files, and stream maps change it: batch files are '
        "loaded as the tap wrote them, without stream maps; remove the stream's map "
        "(`stream_maps`), or have the tap send RECORDs (no `batch_config`)"
    )
    raise BatchFileError(msg)


def file_path(url: str, storage: StorageTarget | None) -> UPath:
    """Where a manifest entry is: the URL itself, or its name under the target's own storage.

    With ``batch_config.storage`` set for the target, files are read from its root (with its
    parameters, e.g. credentials), as the SDK does.
    """
    if storage is None:
        return UPath(url)
    return UPath(storage.root, **storage.params).joinpath(UPath(url).name)


def read_records(
    url: str,
    encoding: BaseBatchFileEncoding,
    storage: StorageTarget | None = None,
    stream: str = "",
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[list[dict[str, t.Any]]]:
    """The records of one batch file, a block's worth at a time.

    A file whose encoding says no compression is still read when it is gzip (the SDK's JSONL
    batcher gzips its files whatever the setting says).

    Raises:
        BatchFileError: when the file is missing, unreadable or not JSON lines; the message
            names the stream, the file and the encoding.
    """
    done = 0
    try:
        with file_path(url, storage).open("rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            gzipped = encoding.compression == "gzip" or head == GZIP_MAGIC
            source: t.BinaryIO | gzip.GzipFile = gzip.GzipFile(fileobj=raw) if gzipped else raw
            for records in _blocks(source, block_bytes):
                done += len(records)
                yield records
    except (OSError, EOFError, zlib.error, msgspec.DecodeError, TypeError, ValueError) as exc:
        msg = (
            f'stream "{stream}": batch file {url} ({describe(encoding)}) could not be read '
            f"after {done} records: {_cause(exc)}"
        )
        raise BatchFileError(msg) from None


def _blocks(
    source: t.BinaryIO | gzip.GzipFile, block_bytes: int
) -> Iterator[list[dict[str, t.Any]]]:
    """Decode a JSON lines stream block by block; a line cut by a block waits for the next."""
    rest = b""
    while True:
        block = source.read(block_bytes)
        if not block:
            break
        cut = block.rfind(b"\n")
        if cut < 0:
            rest += block
            continue
        lines, rest = rest + block[: cut + 1], block[cut + 1 :]
        yield _decode(lines)
    if rest.strip():
        yield _decode(rest)


def _decode(lines: bytes) -> list[dict[str, t.Any]]:
    records = _DECODER.decode_lines(lines)
    for record in records:
        if not isinstance(record, dict):
            msg = f"a line holds {type(record).__name__}, not a JSON object (a record)"
            raise TypeError(msg)
    return t.cast("list[dict[str, t.Any]]", records)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"not a complete gzip file ({exc})"
    if isinstance(exc, msgspec.DecodeError):
        return f"not JSON lines ({exc})"
    return str(exc) or type(exc).__name__


def remove_file(url: str, storage: StorageTarget | None = None) -> None:
    """Delete a batch file whose points are stored; a failure only warns."""
    try:
        file_path(url, storage).unlink()
    except OSError as exc:
        logger.warning("Batch file %s was loaded but could not be deleted: %s", url, exc)
