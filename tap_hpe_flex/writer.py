"""The Singer writer: msgspec encoding, without a flush after every RECORD.

Why: the SDK's ``MsgSpecWriter`` flushes stdout after each message, one ``write`` system call per
record. Here RECORD lines stay in stdout's buffer and every other message (SCHEMA, STATE,
ACTIVATE_VERSION, BATCH) flushes, so a target still sees each STATE right after the records it
covers, in the same order, and nothing is held back longer than until the next STATE (the SDK
writes one at least every 10,000 records and at the end of every stream). Python flushes stdout at
exit, and the tap's signal handler writes a STATE (which flushes) before exiting.
"""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage

if t.TYPE_CHECKING:
    from singer_sdk.singerlib import Message


class FlexWriter(MsgSpecWriter):
    """``MsgSpecWriter`` that lets RECORD lines share buffer flushes."""

    def write_message(self, message: Message) -> None:
        """Write the line; flush unless it is a RECORD."""
        out = sys.stdout
        out.buffer.write(self.format_message(message))
        if type(message) is not RecordMessage:
            out.flush()
