"""A fast loopback upstream for the forward benchmark, run as its own process.

``python -m benchmarks._sink PORT_FILE`` listens on 127.0.0.1 (a free port, written to
PORT_FILE), reads HTTP/1.1 requests with keep-alive, counts the events of each JSON batch
(occurrences of ``"event_id"``: no decoding, so the sink costs little next to the sender)
and answers ``200 {"ok":true}``. ``GET /count`` returns the events received so far.
It runs in a separate process so it does not share the sender's CPU (the box has 2).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"


class Sink:
    def __init__(self) -> None:
        self.events = 0
        self.batches = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                if head.startswith(b"GET /count"):
                    text = b'{"events":%d,"batches":%d}' % (self.events, self.batches)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(text), text))
                else:
                    self.events += body.count(b'"event_id"')
                    self.batches += 1
                    writer.write(_OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def serve(port_file: str) -> None:
    sink = Sink()
    server = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    Path(port_file).write_text(str(port), encoding="utf-8")  # noqa: ASYNC240  (once, before serving)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
