"""Replay hostile requests against a real `digits serve` on loopback, bounded in count and time.

    python benchmarks/attack.py [--rounds 3] [--concurrency 8] [--slow]

Starts its own server on a free 127.0.0.1 port, sends every input of digit_recognizer.testing.hostile (images
that decode huge, a component flood, JSON that breaks parsers, a 9.6 MB JSON body) plus a request over the
pixel budget, another site's page, a bad query parameter and a flood of files, `rounds` times each at
`concurrency` connections, while a prober times /api/health. Prints each kind's status codes and slowest
answer, the server's peak RSS, the slowest /api/health, and any 5xx. Targets: every hostile request answered
4xx (or a correct 200) within 1 s, peak RSS <= 1.5 GB, no 5xx. --slow adds a client that stalls mid-body.
"""
from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from pathlib import Path

PROBE_INTERVAL_S = 0.05
TARGET_S, TARGET_RSS_MB = 1.0, 1536


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def requests() -> list[tuple[str, str, dict]]:
    """(kind, path, httpx keyword arguments) for every hostile request."""
    from digit_recognizer.testing import hostile

    out = []
    for h in hostile.all_inputs():
        if h.content_type == "application/json":
            out.append((h.name, h.path, {"content": h.body, "headers": {"content-type": h.content_type}}))
        else:
            out.append((h.name, h.path, {"files": {"file": ("f", h.body, h.content_type)}}))
    big = hostile.big_16bit_png()
    out.append(("40 large images in one request", "/api/predict",
                {"files": [("file", (f"{k}.png", big, "image/png")) for k in range(40)]}))
    small = hostile.png(hostile.Image.new("L", (40, 40), 255))
    out.append(("1,000 files in one request", "/api/predict",
                {"files": [("file", (f"{k}.png", small, "image/png")) for k in range(1000)]}))
    out.append(("another site's page", "/api/predict",
                {"files": {"file": ("a.png", small, "image/png")}, "headers": {"origin": "https://evil.example"}}))
    out.append(("?image=bad", "/api/predict?image=bad",
                {"content": b"{}", "headers": {"content-type": "application/json"}}))
    return out


async def slow_body(host: str, port: int) -> tuple[int, float]:
    """Declare a 1 MB body, send 10 bytes and stall: the server must drop it, not wait forever."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000000\r\n\r\n0123456789")
    await writer.drain()
    line = await reader.readline()
    writer.close()
    status = int(line.split()[1]) if line.startswith(b"HTTP/") else 0
    return status, time.perf_counter() - t0


async def replay(url: str, rounds: int, concurrency: int, slow: bool) -> tuple[dict, float, list]:
    import httpx

    work = [r for r in requests() for _ in range(rounds)]
    results: dict[str, list[tuple[int, float]]] = defaultdict(list)
    probes: list[float] = []
    done = asyncio.Event()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency + 2)) as client:
        async def prober():
            while not done.is_set():
                t0 = time.perf_counter()
                await client.get(url + "/api/health")
                probes.append(time.perf_counter() - t0)
                await asyncio.sleep(PROBE_INTERVAL_S)

        queue = iter(work)

        async def worker():
            for kind, path, kwargs in queue:
                t0 = time.perf_counter()
                try:
                    status = (await client.post(url + path, **kwargs)).status_code
                except httpx.HTTPError:
                    status = 0  # the connection was dropped
                results[kind].append((status, time.perf_counter() - t0))

        probe = asyncio.create_task(prober())
        tasks = [worker() for _ in range(concurrency)]
        if slow:
            host, port = url.removeprefix("http://").split(":")

            async def slow_one():
                results["stalled body"].append(await slow_body(host, int(port)))
            tasks.append(slow_one())
        await asyncio.gather(*tasks)
        done.set()
        await probe
    return results, max(probes, default=0.0), probes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="times each hostile request is sent")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="one replay (fresh server) each")
    ap.add_argument("--slow", action="store_true", help="also stall one body (takes the server's body timeout)")
    args = ap.parse_args()
    from digit_recognizer.testing.localserver import local_server_process

    rows, notes = [], []
    for concurrency in args.concurrency:
        with local_server_process() as (url, proc):
            base_mb = peak_rss_mb(proc.pid)
            results, slowest_probe, _ = asyncio.run(replay(url, args.rounds, concurrency, args.slow))
            rss_mb = peak_rss_mb(proc.pid)
        fives = 0
        print(f"concurrency {concurrency}")
        for kind, outcomes in results.items():
            codes = " ".join(map(str, sorted({s for s, _ in outcomes})))
            fives += sum(s >= 500 or s == 0 for s, _ in outcomes)
            slowest = max(t for _, t in outcomes)
            rows.append([concurrency, kind, len(outcomes), codes, round(slowest, 2)])
            print(f"  {kind:34s} x{len(outcomes)}  status {codes:10s} slowest {slowest:6.2f} s")
        hostile_slowest = max(r[4] for r in rows if r[0] == concurrency and r[1] != "stalled body")
        line = (f"concurrency {concurrency}: slowest hostile answer {hostile_slowest:.2f} s (target {TARGET_S:.0f} "
                f"s); server peak RSS {rss_mb:.0f} MB (after start-up {base_mb:.0f} MB; target {TARGET_RSS_MB}); "
                f"slowest /api/health {slowest_probe * 1e3:.0f} ms; 5xx or dropped {fives} (target 0)")
        print(line)
        notes.append(line)
    from results import save

    save("attack", "Hostile requests replayed against `digits serve` (one worker), shipped model",
         ["concurrency", "request", "sent", "status", "slowest s"], rows,
         notes=" ".join(f"{n}." for n in notes) + " Client and server share the machine's cores.")


if __name__ == "__main__":
    main()
