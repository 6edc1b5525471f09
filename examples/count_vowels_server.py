"""count_vowels over HTTP, with plain asyncio and a PluginPool.

    python examples/count_vowels_server.py [--port 8000] [--workers N] [--plugin PATH]
    curl -d "Hello World" http://127.0.0.1:8000/count_vowels          # {"count": 3}
    curl "http://127.0.0.1:8000/count_vowels?text=Hello%20World"      # {"count": 3}

The request body (POST) or the ``text`` query parameter (GET) is the plugin's input; the plugin's
output is the response. Plugin calls run on the pool's threads (``await pool.acall(...)``), so the
event loop keeps accepting and answering while they run. Listens on 127.0.0.1 only; SIGINT or
SIGTERM stops it. A minimal HTTP/1.1 (one request per connection), enough for an example: put a
real server in front of it for anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import signal
import sys
import urllib.parse
from typing import Optional, Sequence, Tuple

import extism_fast

HOST = "127.0.0.1"
MAX_BODY = 1 << 20
DEFAULT_PLUGIN = pathlib.Path(__file__).resolve().parent / "count_vowels.wat"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 500: "Internal Server Error"}


class BadRequest(Exception):
    """The request cannot be answered: the status and a short text for the client."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


async def read_request(reader: asyncio.StreamReader) -> Tuple[str, str, bytes]:
    """The method, target and body of one request."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise BadRequest(400, "incomplete or oversized request head") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(400, "malformed request line")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise BadRequest(400, "bad Content-Length") from None
    if length < 0 or length > MAX_BODY:
        raise BadRequest(413, f"the body must be at most {MAX_BODY} bytes")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise BadRequest(400, "body shorter than Content-Length") from None
    return parts[0], parts[1], body


async def answer(pool: extism_fast.PluginPool, method: str, target: str, body: bytes) -> bytes:
    """The plugin's output for a request."""
    url = urllib.parse.urlsplit(target)
    if url.path != "/count_vowels":
        raise BadRequest(404, "try /count_vowels")
    if method == "POST":
        data = body
    elif method == "GET":
        data = urllib.parse.parse_qs(url.query).get("text", [""])[0].encode()
    else:
        raise BadRequest(405, "use GET or POST")
    try:
        return await pool.acall("count_vowels", data)
    except extism_fast.Error as exc:
        raise BadRequest(500, f"plugin call failed: {type(exc).__name__}") from None


async def handle(pool: extism_fast.PluginPool, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one request, then close the connection."""
    try:
        try:
            status, content_type, payload = 200, "application/json", await answer(pool, *await read_request(reader))
        except BadRequest as exc:
            status, content_type, payload = exc.status, "text/plain", str(exc).encode() + b"\n"
        writer.write(f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
        await writer.drain()
    except ConnectionError:
        pass  # the client went away
    finally:
        writer.close()


async def serve(pool: extism_fast.PluginPool, port: int) -> asyncio.base_events.Server:
    """A started server on 127.0.0.1:``port`` (0: any free port)."""
    return await asyncio.start_server(lambda r, w: handle(pool, r, w), HOST, port)


async def run(plugin: str, port: int, workers: Optional[int]) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with extism_fast.PluginPool(plugin, size=workers, functions=[]) as pool:
        server = await serve(pool, port)
        print(f"listening on http://{HOST}:{server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await stop.wait()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=None, help="plugin instances (default: CPU count)")
    parser.add_argument("--plugin", default=str(DEFAULT_PLUGIN), help="count_vowels plugin (.wat/.wasm)")
    args = parser.parse_args(argv)
    asyncio.run(run(args.plugin, args.port, args.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
