"""A small closed-loop HTTP/1.1 load generator (asyncio, keep-alive connections).

It is deliberately lean, so that on a small machine the client takes little CPU
from the server it measures; the same code drives every server a benchmark compares.
"""

from __future__ import annotations

import asyncio
import time


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked = None, False
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        key = key.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return status, body
    return status, await reader.readexactly(length or 0)


async def _worker(
    host: str,
    port: int,
    request: bytes,
    stop_at: float,
    warm_until: float,
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            writer.write(request)
            status, _ = await _read_response(reader)
            t1 = time.perf_counter()
            if t0 >= warm_until:
                if status == 200:
                    latencies.append(t1 - t0)
                else:
                    errors.append(status)
    finally:
        writer.close()


def run_load(
    host: str,
    port: int,
    path: str,
    body: bytes,
    *,
    concurrency: int = 8,
    duration: float = 10.0,
    warmup: float = 2.0,
    content_type: str = "application/json",
) -> dict:
    """POST ``body`` to ``path`` from ``concurrency`` connections for ``duration``
    seconds after ``warmup``; returns rps, p50/p90/p99 in ms, requests and errors."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}"
        f"\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> float:
        start = time.perf_counter()
        warm_until = start + warmup
        stop_at = warm_until + duration
        await asyncio.gather(
            *(
                _worker(host, port, request, stop_at, warm_until, latencies, errors)
                for _ in range(concurrency)
            )
        )
        return time.perf_counter() - warm_until

    elapsed = asyncio.run(main())
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "requests": len(latencies),
        "errors": len(errors),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "concurrency": concurrency,
        "duration_s": round(elapsed, 2),
    }
