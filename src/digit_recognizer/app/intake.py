"""What a request may hand the server, checked before any work is done for it: the body's size and pace,
JSON pixel arrays, multipart uploads, the pixels the images will decode to, and the page that sent it.

Every refusal is a RequestError with a 4xx status and a one-line message; nothing here answers 5xx.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import anyio
import numpy as np
from fastapi import Request

from ..constants import IMAGE_SIZE, PIXEL_MAX
from ..inference.reader.decode import MAX_PIXELS, image_pixels

MAX_FILES = 64  # per multipart request
# A 28x28 pixel array is about 4 KB of JSON, 20 KB pretty-printed: anything much larger is not one.
MAX_JSON_BYTES = 256 * 1024
# Pixels all the images of one request may decode to: two of the largest single images allowed.
MAX_REQUEST_PIXELS = 2 * MAX_PIXELS
BODY_TIMEOUT_S = 30.0  # a client that takes longer to send its body is dropped (a slow-loris upload)


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refusing (413) as soon as it passes max_bytes, whatever Content-Length claims, and (408) if it
    has not all arrived within BODY_TIMEOUT_S."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and len(declared) < 19 and int(declared) > max_bytes:
        raise RequestError(413, f"request body of {int(declared):,} bytes exceeds the {max_bytes:,}-byte limit")
    chunks, size = [], 0
    try:
        with anyio.fail_after(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise RequestError(413, f"request body exceeds the {max_bytes:,}-byte limit")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestError(408, f"request body not received within {BODY_TIMEOUT_S:.0f} s") from None
    body = b"".join(chunks)
    request._body = body  # starlette serves form() from this cached body
    return body


def parse_pixels(body: bytes) -> np.ndarray:
    """A JSON body {"pixels": 28x28 numbers 0..255} as a uint8 array; an array with none above 1 is the usual
    x / 255 (or a 0/1 mask) and is scaled to 0..255. Runs in a worker thread: parsing is CPU work that must not hold up the
    event loop."""
    if len(body) > MAX_JSON_BYTES:
        raise RequestError(413, f"JSON body of {len(body):,} bytes exceeds the {MAX_JSON_BYTES:,}-byte limit for "
                                "a pixel array; send an image file instead")
    try:
        payload = json.loads(body)
    except RecursionError:
        raise RequestError(400, "malformed JSON (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, integers past Python's digit limit
        raise RequestError(400, f"malformed JSON ({str(e)[:200]})") from None
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise RequestError(422, 'JSON body must be {"pixels": <28x28 array of 0-255>}')
    try:
        a = np.asarray(payload["pixels"], dtype=np.float64)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise RequestError(422, "pixels must be a 28x28 array of numbers between 0 and 255") from None
    if a.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise RequestError(422, f"pixels must have shape ({IMAGE_SIZE}, {IMAGE_SIZE}), got {a.shape}")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 255:
        raise RequestError(422, "pixels must be numbers between 0 and 255 (or floats between 0 and 1)")
    if a.max() <= 1.0:  # 0..1 (x / 255, or a 0/1 mask): on 0..255 such an array would be blank anyway
        a = a * PIXEL_MAX
    return np.rint(a).astype(np.uint8)


def check_pixel_budget(items: list[tuple[str | None, Any]]) -> None:
    """Refuse (413) a request whose images would decode to more than MAX_REQUEST_PIXELS in all, judged from
    their headers before any is decoded. A file that is not an image counts nothing here: decoding it fails
    on its own, with its own message."""
    total = sum(image_pixels(src) for _, src in items if isinstance(src, bytes))
    if total > MAX_REQUEST_PIXELS:
        raise RequestError(413, f"the images of one request decode to {total:,} pixels; the limit is "
                                f"{MAX_REQUEST_PIXELS:,} (send fewer or smaller images per request)")


async def uploads(request: Request) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each multipart 'file' field, the body already read and capped."""
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
    except Exception as e:  # starlette raises its own parse errors for malformed multipart
        raise RequestError(400, f"malformed multipart body ({e})") from None
    files = [f for f in form.getlist("file") if hasattr(f, "read")]
    if not files:
        raise RequestError(422, "no file in the multipart field 'file'")
    return [(f.filename or "upload", await f.read()) for f in files]


def origin_of(url: str) -> str:
    """scheme://host[:port], lower-cased; "null" (the origin browsers give sandboxed and file pages) as is."""
    if url == "null":
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_origin(request: Request, allowed: frozenset[str]) -> str | None:
    """The Origin of a browser request sent by another site's page and not allowed, else None. Browsers name
    the page's origin on every cross-origin POST (a form post included), so a page elsewhere cannot make a
    visitor's browser upload to this server unless it was started with --allow-origin for that page."""
    origin = request.headers.get("origin")
    if not origin:
        return None
    own = origin_of(f"{request.url.scheme}://{request.headers.get('host', '')}")
    return None if origin_of(origin) in allowed | {own} else origin
