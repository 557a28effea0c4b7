"""Bounded load test of `digits serve` on loopback: N requests at C concurrent connections.

    python benchmarks/load_test.py [--requests 5000] [--concurrency 32] [--workers 1 2] [--photos]

For each worker count, starts its own server on 127.0.0.1 (a free port; `digits serve --workers N`), posts
MNIST-test digits as PNG uploads (or, with --photos, as photo-like images: a digit photographed, cut out tight or
with margin, in bold or thin pens, at low resolution, on a chalkboard, in colour, faint; the reader's whole work),
and prints requests/s, p50/p99 latency and the error count. It stops by itself.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import time


def payloads(n: int) -> list[bytes]:
    from PIL import Image

    from digit_recognizer.data import load_mnist

    images = load_mnist(progress=False).test.images[:n].numpy()
    out = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def photo_payloads(n: int) -> list[bytes]:
    """n MNIST test digits, each in one of the photo-like presentations (benchmarks/reader_speed.py's)."""
    import numpy as np

    from digit_recognizer.data import load_mnist
    from digit_recognizer.testing.presentations import make
    from reader_speed import PHOTO_LIKE, SEED

    images = load_mnist(progress=False).test.images[:n].numpy()
    rng = np.random.default_rng(SEED)
    return [make(PHOTO_LIKE[k % len(PHOTO_LIKE)], im, rng) for k, im in enumerate(images)]


def upload(i: int, body: bytes) -> tuple[str, bytes, str]:
    """The multipart file: named and typed as what its bytes are (a JPEG or a PNG)."""
    return (f"{i}.jpg", body, "image/jpeg") if body[:2] == b"\xff\xd8" else (f"{i}.png", body, "image/png")


async def load(url: str, bodies: list[bytes], total: int, concurrency: int) -> tuple[list[float], int, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def worker() -> None:
            nonlocal errors
            for i in counter:
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, files={"file": upload(i, bodies[i % len(bodies)])})
                    ok = r.status_code == 200 and "digit" in r.json()
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return latencies, errors, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server worker processes, one run each")
    ap.add_argument("--photos", action="store_true", help="photo-like images instead of MNIST's 28x28 PNGs")
    args = ap.parse_args()
    from digit_recognizer.testing.localserver import local_server

    bodies = photo_payloads(500) if args.photos else payloads(500)
    rows = []
    for workers in args.workers:
        with local_server("--workers", str(workers)) as url:
            lat, errors, wall = asyncio.run(load(url + "/api/predict", bodies, args.requests, args.concurrency))
        lat.sort()
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3
        print(f"workers {workers}  requests {len(lat)}  concurrency {args.concurrency}  errors {errors}")
        print(f"  throughput {len(lat) / wall:.0f} req/s  p50 {p(0.50):.1f} ms  p99 {p(0.99):.1f} ms  "
              f"mean {statistics.mean(lat) * 1e3:.1f} ms")
        rows.append([workers, len(lat), args.concurrency, errors, round(len(lat) / wall), round(p(0.50), 1),
                     round(p(0.99), 1), round(statistics.mean(lat) * 1e3, 1)])
    from results import save

    what = "photo-like images of MNIST test digits" if args.photos else "PNG uploads of MNIST test digits"
    save("load_test_photos" if args.photos else "load_test", f"HTTP load: {what} to /api/predict, shipped model",
         ["workers", "requests", "concurrency", "errors", "requests/s", "p50 ms", "p99 ms", "mean ms"], rows,
         notes="Server and client on the same machine, so the client's load competes with the workers.")


if __name__ == "__main__":
    main()
