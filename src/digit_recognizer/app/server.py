"""`digits serve`: the app (app.serve) in one process or in uvicorn worker processes that share a port.

    serve(host, port, ServeSettings(model=..., ...), workers=N)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from ..errors import DigitsError
from ..inference.recognizer import Recognizer
from .serve import DEFAULT_MAX_BYTES, create_app

# uvicorn: connections beyond this are answered 503 at once; an idle kept-alive connection is closed after
# KEEP_ALIVE_S (a slow client cannot hold one open forever).
MAX_CONNECTIONS = 256
KEEP_ALIVE_S = 5


@dataclass(frozen=True)
class ServeSettings:
    """What `digits serve` was asked for. uvicorn's worker processes build the app themselves, so the settings
    travel to them in one environment variable; with workers, `model` is the server's private, verified copy,
    `name` the model's own name and `failures` where a worker that cannot start says why."""
    model: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    device: str = "auto"
    allow_origins: tuple[str, ...] = ()
    name: str | None = None
    failures: str | None = None

    def app(self) -> FastAPI:
        recognizer = Recognizer.load(self.model, device=self.device).prepare()  # no request builds a network
        if self.name is not None:
            recognizer.loaded.label = self.name
        return create_app(recognizer, max_bytes=self.max_bytes, allow_origins=self.allow_origins,
                          failures=Path(self.failures) if self.failures else None)


SERVE_ENV = "DIGITS_SERVE_SETTINGS"  # JSON of ServeSettings, for the worker processes


def app_from_environment() -> FastAPI:
    """The app as one worker process builds it, from the settings `serve` put in the environment. A worker that
    cannot load the model leaves its reason where /api/health finds it and exits with one line; one that starts
    clears the earlier reasons (the server has its workers again)."""
    import json
    import os
    import sys

    from ..config import from_dict

    settings = from_dict(ServeSettings, json.loads(os.environ[SERVE_ENV]), SERVE_ENV)
    failures = Path(settings.failures) if settings.failures else None
    try:
        app = settings.app()
    except (DigitsError, OSError) as e:
        if failures is not None:
            failures.mkdir(parents=True, exist_ok=True)
            (failures / str(os.getpid())).write_text(str(e))
        print(f"error: worker {os.getpid()} could not start: {e}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    if failures is not None:
        for f in failures.glob("*"):
            f.unlink(missing_ok=True)
    return app


def serve(host: str, port: int, settings: ServeSettings, workers: int = 1) -> None:
    """One process, or `workers` uvicorn worker processes sharing the port, each loading the model. Idle
    connections are closed after KEEP_ALIVE_S, headers must arrive within slowclients.HEADER_TIMEOUT_S, and
    connections beyond MAX_CONNECTIONS are answered 503."""
    import json
    import os
    import signal
    import sys
    import tempfile
    from dataclasses import asdict, replace

    import uvicorn

    from ..models.modelcopy import private_copy

    from .slowclients import protocol

    limits = {"host": host, "port": port, "log_level": "info", "timeout_keep_alive": KEEP_ALIVE_S,
              "limit_concurrency": MAX_CONNECTIONS, "http": protocol()}
    if workers <= 1:
        # uvicorn shuts down gracefully on SIGINT or SIGTERM, then raises the signal again: a stop asked for is a
        # clean exit (0), as it is with workers.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(settings.app(), **limits)
        return
    # Every worker, the first ones and any that replaces one, loads the model this process verified, from a
    # private copy: the files on disk may change or break while the server runs, and one port keeps one model.
    with tempfile.TemporaryDirectory(prefix="digits-serve-") as private:
        copy, loaded = private_copy(settings.model, Path(private) / "model")
        shared = replace(settings, model=str(copy), name=loaded.name, failures=str(Path(private) / "failures"))
        os.environ[SERVE_ENV] = json.dumps(asdict(shared))
        uvicorn.run("digit_recognizer.app.server:app_from_environment", factory=True, workers=workers, **limits)
