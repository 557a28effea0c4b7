"""HTTP API and drawing page: FastAPI app over the same Recognizer as the CLI.

Inference runs in worker threads, off the event loop, so slow requests never block others.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from ..constants import IMAGE_SIZE
from ..errors import DigitsError, EmptyInput, NoInk, NotADigit, NotAnImage, TooLarge
from ..inference.recognizer import Recognizer, read_number

DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # per request
MAX_FILES = 64  # per multipart request
STATUS = {TooLarge: 413, NotAnImage: 415, EmptyInput: 400, NoInk: 422, NotADigit: 422}


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refusing (413) as soon as it passes max_bytes, whatever Content-Length claims."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise RequestError(413, f"request body of {int(declared):,} bytes exceeds the {max_bytes:,}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(413, f"request body exceeds the {max_bytes:,}-byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # starlette serves form() from this cached body
    return body


def pixels_image(payload: Any) -> np.ndarray:
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise RequestError(422, 'JSON body must be {"pixels": <28x28 array of 0-255>}')
    try:
        a = np.asarray(payload["pixels"], dtype=np.float64)
    except (ValueError, TypeError):
        raise RequestError(422, "pixels must be a 28x28 array of numbers") from None
    if a.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise RequestError(422, f"pixels must have shape ({IMAGE_SIZE}, {IMAGE_SIZE}), got {a.shape}")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 255:
        raise RequestError(422, "pixels must be numbers between 0 and 255")
    return np.rint(a).astype(np.uint8)


def create_app(recognizer: Recognizer, *, max_bytes: int = DEFAULT_MAX_BYTES) -> FastAPI:
    from .. import __version__

    app = FastAPI(title="digits", version=__version__,
                  description="Handwritten-digit recognition. POST an image, get the digit and probabilities.")

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    def answer(exc: DigitsError) -> RequestError:
        return RequestError(next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 422), str(exc))

    def run_predict(items: list[tuple[str | None, Any]], with_image: bool) -> list[dict[str, Any]]:
        results = []
        for name, src in items:
            try:
                # Files and JSON pixel arrays take the same path: polarity, centring, blank/noise refusal (an
                # array already in MNIST's form passes through unchanged).
                pred, x = recognizer.predict_with_input(src, name or "pixels")
            except DigitsError as e:
                raise answer(e) from None
            out = pred.to_dict(**({"file": name} if name is not None else {}))
            if with_image:
                out["image"] = x.tolist()
            results.append(out)
        return results

    def run_read(items: list[tuple[str | None, Any]]) -> list[dict[str, Any]]:
        try:
            return [read_number(recognizer, src, name or "image").to_dict(**({"file": name} if name else {}))
                    for name, src in items]
        except DigitsError as e:
            raise answer(e) from None

    async def request_items(request: Request) -> list[tuple[str | None, Any]]:
        """(name, image) pairs from multipart 'file' fields or a JSON pixel array."""
        body = await read_body(request, max_bytes)
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            try:
                form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
            except Exception as e:  # starlette raises its own parse errors for malformed multipart
                raise RequestError(400, f"malformed multipart body ({e})") from None
            files = [f for f in form.getlist("file") if hasattr(f, "read")]
            if not files:
                raise RequestError(422, "no file in the multipart field 'file'")
            return [(f.filename or "upload", await f.read()) for f in files]
        if ctype.startswith("application/json"):
            try:
                payload = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise RequestError(400, f"malformed JSON ({e})") from None
            return [(None, pixels_image(payload))]
        if not body:
            raise RequestError(400, "empty request: send multipart 'file' or JSON pixels")
        raise RequestError(415, f"unsupported content type '{ctype}': use multipart/form-data or JSON")

    @app.post("/api/predict", summary="Digit in one or more images (multipart field 'file') or a pixel array")
    async def predict(request: Request, image: bool = False):
        """Multipart `file` (may repeat) or JSON `{"pixels": 28x28}`. `?image=true` adds the 28x28 input seen."""
        results = await run_in_threadpool(run_predict, await request_items(request), image)
        return results[0] if len(results) == 1 else results

    @app.post("/api/read", summary="Whole numbers: every digit in each image, left to right")
    async def read(request: Request):
        """Multipart `file` (may repeat). Answers like `digits read --json`: number, digits with boxes."""
        results = await run_in_threadpool(run_read, await request_items(request))
        return results[0] if len(results) == 1 else results

    @app.get("/api/health")
    async def health():
        """ok, and which worker process answered (behind `--workers N`, each is its own process)."""
        import os

        return {"status": "ok", "worker": os.getpid()}

    @app.get("/api/model")
    async def model_info():
        meta = recognizer.meta
        return {"architecture": meta.get("architecture"), "parameters": meta.get("parameters"),
                "metrics": meta.get("metrics"), "members": len(recognizer.loaded.nets),
                "version": __version__, "path": str(recognizer.loaded.path)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return (resources.files("digit_recognizer.app") / "static" / "index.html").read_text()

    return app


# How `digits serve` hands its settings to uvicorn's worker processes, which build the app themselves.
SERVE_ENV = {"model": "DIGITS_SERVE_MODEL", "max_bytes": "DIGITS_SERVE_MAX_BYTES", "device": "DIGITS_SERVE_DEVICE"}


def app_from_environment() -> FastAPI:
    """The app as one worker process builds it, from the settings `serve` put in the environment."""
    import os

    model = os.environ.get(SERVE_ENV["model"]) or None
    return create_app(Recognizer.load(model, device=os.environ.get(SERVE_ENV["device"], "auto")),
                      max_bytes=int(os.environ.get(SERVE_ENV["max_bytes"], DEFAULT_MAX_BYTES)))


def serve(host: str, port: int, model: str | None, max_bytes: int, device: str = "auto", workers: int = 1) -> None:
    """One process, or `workers` uvicorn worker processes sharing the port, each loading the model."""
    import os

    import uvicorn

    if workers <= 1:
        uvicorn.run(create_app(Recognizer.load(model, device=device), max_bytes=max_bytes), host=host, port=port,
                    log_level="info")
        return
    os.environ.update({SERVE_ENV["model"]: model or "", SERVE_ENV["max_bytes"]: str(max_bytes),
                       SERVE_ENV["device"]: device})
    uvicorn.run("digit_recognizer.app.serve:app_from_environment", factory=True, workers=workers, host=host,
                port=port, log_level="info")
