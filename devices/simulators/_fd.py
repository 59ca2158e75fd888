"""A helper the simulators share: write all bytes to a non-blocking file descriptor."""

from __future__ import annotations

import os

import trio


async def write_all(fd: int, data: bytes) -> None:
    """Write everything to a non-blocking fd, waiting while the other side is full."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(fd)
            continue
        view = view[written:]


__all__ = ["write_all"]
