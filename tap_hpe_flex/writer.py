"""The Singer writer: msgspec encoding, without a flush after every RECORD.

Why: the SDK's ``MsgSpecWriter`` flushes stdout after each message, one ``write`` system call per
record. Here RECORD lines stay in stdout's buffer and every other message (SCHEMA, STATE,
ACTIVATE_VERSION, BATCH) flushes, so a target still sees each STATE right after the records it
covers, in the same order, and nothing is held back longer than until the next STATE (the SDK
writes one at least every 10,000 records and at the end of every stream). Python flushes stdout at
exit, and the tap's signal handler writes a STATE (which flushes) before exiting.

Every line is written whole: with ``PYTHONUNBUFFERED`` (Meltano sets it) stdout's binary layer is
a raw file whose ``write`` may take only part of the bytes, e.g. when a signal interrupts it; the
rest is written before anything else, so a target never reads a torn line. A SIGTERM handler that
writes a final STATE must not run in the middle of a line either: while a line is being written,
``writing`` is true and the tap defers its termination to ``deferred``, run right after the line.

A :class:`PreparedRecord` (what the tap's streams emit) is encoded straight from its fields, one
msgspec call into the SDK's line buffer, with the SDK's own encoder: the same bytes as the SDK's
writer gives the equivalent ``RecordMessage``, minus three Python calls per record.
"""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter, serialize_jsonl
from singer_sdk.singerlib import RecordMessage, SingerMessageType

if t.TYPE_CHECKING:
    from singer_sdk.singerlib import Message


class PreparedRecord(RecordMessage):
    """A ``RecordMessage`` whose maker guarantees ``time_extracted`` is an aware UTC datetime.

    Why: ``RecordMessage`` converts ``time_extracted`` to UTC once per record (a new datetime
    each time); the tap's streams stamp records from one UTC clock reading shared by the records
    extracted within the same millisecond, so the conversion is skipped. It is still a
    ``RecordMessage`` (any other writer, e.g. a test's, sees the same fields and ``to_dict``).
    Build it positionally: ``PreparedRecord(stream, record, version, time_extracted)``.
    """

    __slots__ = ()

    def __post_init__(self) -> None:
        """Only set the type: ``time_extracted`` is already aware UTC (see the class)."""
        self.type = SingerMessageType.RECORD


class FlexWriter(MsgSpecWriter):
    """``MsgSpecWriter`` that lets RECORD lines share buffer flushes and never tears a line."""

    #: True while a line is being written (a signal handler must then defer, see ``deferred``).
    writing: bool = False
    #: Set by a signal handler that arrived mid-line; run as soon as the line is complete.
    deferred: t.Callable[[], None] | None = None

    def write_message(self, message: Message) -> None:
        """Write the line; flush unless it is a RECORD; then run a deferred termination.

        ``writing`` covers the encoding too: msgspec encodes every message into one shared
        buffer, so a STATE encoded by a signal handler meanwhile would overwrite (or, while a
        view of it is held, fail to resize) the line being written.
        """
        out = sys.stdout
        self.writing = True
        try:
            if type(message) is PreparedRecord:
                line = serialize_jsonl(record_fields(message))
            else:
                line = self.format_message(message)
            write_whole(out.buffer, line)
        finally:
            self.writing = False
        if not isinstance(message, RecordMessage):
            out.flush()
        if self.deferred is not None:
            action, self.deferred = self.deferred, None
            action()


def record_fields(message: RecordMessage) -> dict[str, t.Any]:
    """Return the fields of a RECORD line in the SDK's order (``RecordMessage.to_dict``, inlined).

    Only for a :class:`PreparedRecord`, whose ``time_extracted`` is never None.
    """
    if message.version is None:
        return {
            "type": "RECORD",
            "stream": message.stream,
            "record": message.record,
            "time_extracted": message.time_extracted,
        }
    return {
        "type": "RECORD",
        "stream": message.stream,
        "record": message.record,
        "version": message.version,
        "time_extracted": message.time_extracted,
    }


def write_whole(stream: t.BinaryIO, data: bytes | bytearray) -> None:
    """Write all of ``data``, resuming after a partial write of a raw (unbuffered) stream."""
    written = stream.write(data)
    while written is None or written < len(data):
        # Rare (a signal or a full pipe): copy the rest, so no view pins the encoder's buffer.
        data = data if written is None else bytes(data[written:])
        written = stream.write(data)
