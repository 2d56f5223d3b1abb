"""What an app's sender and a collector say to each other over a stream socket.

Every message is a frame: a 4-byte big-endian length, then that many bytes. The sender opens
with a hello (JSON: protocol version, service, instance, process id, and an ingest key when the
collector is across a network); the collector answers ``ready`` or closes with a reason. Then
each event frame is an 8-byte sequence number and a :mod:`~watchkeeper.recording.codec`
document, and the collector acknowledges each one, in order, with the sequence number and the
count of events it took into its buffer. The sender keeps what is not acknowledged yet and sends
it again after a reconnection, so a collector that dies loses at most what it held itself.
"""

from __future__ import annotations

import struct

PROTOCOL = 1
HEADER = struct.Struct(">I")
SEQUENCE = struct.Struct(">Q")
ACK = struct.Struct(">QI")
READY = b"ready"
MAX_FRAME_BYTES = 64 * 1024 * 1024
"""Far above a batch's size: a longer frame means a peer that does not speak this protocol."""


class FrameTooLarge(ValueError):
    """A frame header announcing more than :data:`MAX_FRAME_BYTES`."""


def frame(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


def frame_length(header: bytes) -> int:
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise FrameTooLarge(f"a frame of {length} bytes is beyond the protocol's limit")
    return int(length)
