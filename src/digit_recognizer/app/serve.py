"""HTTP API and drawing page: FastAPI app over the same Recognizer as the CLI (app.server runs it).

Inference runs in worker threads, off the event loop, so slow requests never block others.
"""
from __future__ import annotations

from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Optional

import anyio
from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi_offline import FastAPIOffline

from ..errors import DigitsError, EmptyInput, NotAnImage, TooLarge
from ..inference.recognizer import Recognizer, preprocess_workers, read_number
from .schemas import ERRORS, HealthOut, ModelOut, PredictionOut, ReadingOut, one_or_many, upload_body
from .intake import RequestError, check_pixel_budget, cross_origin, parse_pixels, read_body, uploads

DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # per request
STATUS = {TooLarge: 413, NotAnImage: 415, EmptyInput: 400}
MIN_CONFIDENCE = Query(None, ge=0.0, le=1.0, description="refuse answers below this calibrated probability "
                                                        "(default: the model's threshold)")
MIN_SCORE = Query(None, description="refuse marks whose digit score is below this as not a digit (default: the "
                                    "model's threshold; lower answers more)")
FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
           b'fill="#222"/><path d="M4 4h8l-5 9" stroke="#fff" stroke-width="2" fill="none"/></svg>')


def create_app(recognizer: Recognizer, *, max_bytes: int = DEFAULT_MAX_BYTES,
               allow_origins: tuple[str, ...] = (), failures: Path | None = None) -> FastAPI:
    """The app. Image work runs in at most one thread per core (decoded images are large: this bounds the
    memory that concurrent requests can take); browsers may call it from its own page and from allow_origins.
    `failures`: the folder where worker processes that could not start leave their reason (--workers)."""
    from .. import __version__
    from .intake import origin_of

    # /docs and /redoc from assets shipped in a package (fastapi-offline), not a CDN: they work offline.
    app = FastAPIOffline(title="digits", version=__version__,
                         description="Handwritten-digit recognition. POST an image, get the digit and "
                                     "probabilities; POST a photo of a number, get the number.")
    guard(app, frozenset(map(origin_of, allow_origins)))
    work = Work(recognizer, max_bytes)
    image_routes(app, work)
    info_routes(app, recognizer, failures)
    page_routes(app)
    return app


def guard(app: FastAPI, allowed: frozenset[str]) -> None:
    """Every error as {"error": one line}, and cross-origin requests refused unless from `allowed` pages."""

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):  # 404, 405: the same shape as every error
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(_: Request, exc: RequestValidationError):
        what = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors())
        return JSONResponse({"error": f"invalid request ({what})"}, status_code=422)

    @app.middleware("http")
    async def same_origin_only(request: Request, call_next):
        origin = cross_origin(request, allowed)
        if origin is not None:
            return JSONResponse({"error": f"cross-origin request from {origin} refused (start the server with "
                                          f"--allow-origin {origin} to allow that page)"}, status_code=403)
        return await call_next(request)

    if allowed:  # answers the browsers' preflight requests and labels responses for the allowed pages
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=sorted(allowed), allow_methods=["GET", "POST"],
                           allow_headers=["content-type"])


Items = list[tuple[Optional[str], Any]]  # (file name or None, image) per image of a request


class Work:
    """A request's images read into answers by the recognizer, in worker threads. Image work and JSON parsing
    each get one thread per core: a parse (milliseconds, bounded by MAX_JSON_BYTES) never waits behind a queue
    of large photos."""

    def __init__(self, recognizer: Recognizer, max_bytes: int):
        self.recognizer, self.max_bytes = recognizer, max_bytes
        self.limiter = anyio.CapacityLimiter(preprocess_workers())
        self.parse_limiter = anyio.CapacityLimiter(preprocess_workers())

    async def in_worker(self, fn: Callable, *args: Any, parse: bool = False) -> Any:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.parse_limiter if parse else self.limiter)

    async def items(self, request: Request) -> Items:
        """(name, image) pairs from multipart 'file' fields or a JSON pixel array."""
        body = await read_body(request, self.max_bytes)
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            items = await uploads(request)
            # From the images' headers, with the parsing threads: a refusal never queues behind large photos.
            await self.in_worker(check_pixel_budget, items, parse=True)
            return items
        if ctype.startswith("application/json"):
            return [(None, await self.in_worker(parse_pixels, body, parse=True))]
        if not body:
            raise RequestError(400, "empty request: send multipart 'file' or JSON pixels")
        raise RequestError(415, f"unsupported content type '{ctype}': use multipart/form-data or JSON")

    def threshold(self, min_confidence: float | None) -> float:
        return self.recognizer.min_confidence if min_confidence is None else min_confidence

    def predict(self, items: Items, with_image: bool, min_confidence: float | None,
                min_score: float | None) -> list[dict[str, Any]]:
        results = []
        for name, src in items:
            with answered():
                # Files and JSON pixel arrays take the same path: polarity, centring, blank/noise refusal (an
                # array already in MNIST's form passes through unchanged).
                pred, x = self.recognizer.predict_with_input(src, name or "pixels")
            pred = pred.at_threshold(self.threshold(min_confidence), min_score)
            out = pred.to_dict(**({"file": name} if name is not None else {}))
            if with_image:
                out["image"] = x.tolist()
            results.append(out)
        return results

    def read(self, items: Items, min_confidence: float | None, min_score: float | None) -> list[dict[str, Any]]:
        with answered():
            return [read_number(self.recognizer, src, name or "image")
                    .at_threshold(self.threshold(min_confidence), min_score)
                    .to_dict(**({"file": name} if name else {})) for name, src in items]

    def trace(self, items: Items, number: bool) -> dict[str, Any]:
        from .trace import steps_json

        name, src = items[0]
        with answered():
            trace, result = self.recognizer.trace(src, number=number)
        return {"answer": result.to_dict(**({"file": name} if name else {})), "steps": steps_json(trace),
                "refused_at": trace.refused}


@contextmanager
def answered():
    """A DigitsError as the request's error: its status (STATUS, else 422) and its one line."""
    try:
        yield
    except DigitsError as e:
        raise RequestError(next((s for cls, s in STATUS.items() if isinstance(e, cls)), 422), str(e)) from None


def image_routes(app: FastAPI, work: Work) -> None:
    """POST /api/predict, /api/read and /api/trace."""

    @app.post("/api/predict", summary="Digit in one or more images (multipart field 'file') or a pixel array",
              openapi_extra=upload_body(with_pixels=True),
              responses={200: one_or_many(PredictionOut), **ERRORS})
    async def predict(request: Request, image: bool = False, min_confidence: Optional[float] = MIN_CONFIDENCE,
                      min_score: Optional[float] = MIN_SCORE):
        """Multipart `file` (may repeat) or JSON `{"pixels": 28x28}` (0..255, or 0..1 floats). `?image=true` adds
        the 28x28 input seen. A blank, a number or a mark that is not a digit is answered `refused: true` with
        a `reason`."""
        results = await work.in_worker(work.predict, await work.items(request), image, min_confidence, min_score)
        return results[0] if len(results) == 1 else results

    @app.post("/api/read", summary="Whole numbers: every digit in each image, left to right",
              openapi_extra=upload_body(with_pixels=False), responses={200: one_or_many(ReadingOut), **ERRORS})
    async def read(request: Request, min_confidence: Optional[float] = MIN_CONFIDENCE,
                   min_score: Optional[float] = MIN_SCORE):
        """Multipart `file` (may repeat). Answers like `digits read --json`: number, digits with boxes."""
        results = await work.in_worker(work.read, await work.items(request), min_confidence, min_score)
        return results[0] if len(results) == 1 else results

    @app.post("/api/trace", summary="What the reader did to one image, step by step (the page's 'show the steps')",
              openapi_extra=upload_body(with_pixels=True), responses=ERRORS)
    async def trace(request: Request, number: bool = False):
        """Multipart `file` or JSON pixels: each step's picture (a PNG data URL) and facts, in order, and the
        answer they led to; with `?number=true` the steps of reading a whole number."""
        return await work.in_worker(work.trace, await work.items(request), number)


def info_routes(app: FastAPI, recognizer: Recognizer, failures: Path | None) -> None:
    """GET /api/health and /api/model."""
    from .. import __version__

    @app.get("/api/health", response_model=HealthOut, responses={503: ERRORS[503]})
    async def health():
        """ok, and which worker process answered (behind `--workers N`, each is its own process); 503 while a
        worker process could not start (the server runs short of its workers)."""
        import os

        failed = worker_failure(failures)
        if failed is not None:
            return JSONResponse({"error": f"a worker process could not start: {failed}", "status": "degraded",
                                 "worker": os.getpid()}, status_code=503)
        return {"status": "ok", "worker": os.getpid()}

    @app.get("/api/model", response_model=ModelOut)
    async def model_info():
        """The model served: its name and SHA-256 (not where it lies on the server's disk), and its numbers."""
        meta = recognizer.meta
        return {"name": recognizer.loaded.name, "sha256": recognizer.loaded.sha256,
                "architecture": meta.get("architecture"), "parameters": meta.get("parameters"),
                "metrics": meta.get("metrics"), "members": len(recognizer.loaded.nets),
                "marker_reader": recognizer.loaded.marker is not None, "version": __version__}


def page_routes(app: FastAPI) -> None:
    """The drawing page at /, its example images and the favicon."""
    static = resources.files("digit_recognizer.app") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")  # the page's example images

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return (static / "index.html").read_text()

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(FAVICON, media_type="image/svg+xml")


def worker_failure(failures: Path | None) -> str | None:
    """The reason a worker process last failed to start, while one has and none has started since."""
    if failures is None or not failures.is_dir():
        return None
    for f in sorted(failures.glob("*")):
        try:
            return f.read_text()
        except OSError:
            continue
    return None
