"""Commands that convert and serve models: export, attach-marker, import-keras, serve."""
from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import typer

from ...errors import DigitsError, UsageError
from ...inference.device import resolve_device
from .common import (DataDir, Device, ModelPath, NoVerify, app, echo_use_it, invocation, load_data, model_in_use,
                     require_extra)

@app.command()
def export(onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write."), model: Optional[str] = ModelPath,
           device: str = Device,
           marker_reader: bool = typer.Option(False, "--marker-reader",
                                              help="Export the model's marker reader, which reads the digits "
                                                   "whose strokes preprocessing thinned as a fat marker's.")
           ) -> None:
    """Export a model to ONNX (dynamic batch; float pixels 0..255 in, logits out)."""
    require_extra("onnx", ("onnx",))
    from ...inference.export import export_onnx
    from ...models.modelfile import load_model

    dev = resolve_device(device)
    typer.echo(f"wrote {export_onnx(load_model(model_in_use(model)), onnx, dev, marker_reader)}")


@app.command("attach-marker")
def attach_marker(marker: str = typer.Argument(..., metavar="MARKER", help="The marker reader: a model trained "
                                                "with --recipe marker (run folder or model file)."),
                  model: str = typer.Option(..., "--model", metavar="PATH",
                                            help="The model to give it (run folder or model file; rewritten).")
                  ) -> None:
    """Give a model a marker reader: the digits whose strokes the reader thins as a fat marker's go to it."""
    from ...models.modelcopy import attach_marker_reader

    typer.echo(f"{attach_marker_reader(model_in_use(model), marker)} now reads fat markers' digits with {marker}")


@app.command("import-keras")
def import_keras(h5: Path = typer.Argument(..., metavar="MODEL.h5", help="The tutorial's cnn_model.h5."),
                 out: Path = typer.Option(..., "--out", help="Model folder to write."),
                 data_dir: Optional[Path] = DataDir, no_verify: bool = NoVerify) -> None:
    """Import the tutorial's Keras model (weights only; no TensorFlow needed), calibrated on the last 6,000
    training images (those Keras' validation_split=0.1 holds out)."""
    require_extra("keras", ("h5py",))
    from ...models.keras import load_keras_tutorial
    from ...training.keras_import import import_keras as run_import

    net, source = load_keras_tutorial(h5)  # a bad file is reported before any data loads
    ds = load_data(data_dir, no_verify)
    model_json = run_import(net, source, out, ds.train, command=invocation())
    from ...models.modelfile import read_json

    acc = read_json(model_json)["metrics"]["val_accuracy"]
    typer.echo(f"imported {h5} -> {model_json} (accuracy on the last 6,000 training images: {acc * 100:.2f}%)")
    echo_use_it(out)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
          port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0: any free port)."),
          model: Optional[str] = ModelPath,
          max_bytes: int = typer.Option(10 * 1024 * 1024, min=1, help="Largest request body accepted (bytes)."),
          device: str = Device,
          workers: int = typer.Option(1, help="Worker processes sharing the port, each with its own copy of the "
                                               "model (uvicorn's workers)."),
          allow_origin: List[str] = typer.Option(
              [], metavar="ORIGIN", help="A web page origin (https://example.org) whose scripts may call the API; "
                                         "repeat for more. Others are refused.")) -> None:
    """HTTP API and a page at / where you draw a digit: POST /api/predict (one digit per image or pixel array),
    POST /api/read (whole numbers), GET /api/health, GET /api/model; the API's documentation at /docs."""
    require_extra("serve", ("fastapi", "uvicorn", "multipart", "fastapi_offline"))
    from ..server import ServeSettings, serve as run_server

    resolve_device(device)
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    for origin in allow_origin:
        if origin != "null" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise UsageError(f"--allow-origin {origin!r}: expected scheme://host[:port], like https://example.org")
    check_listen(host, port)
    run_server(host, port, ServeSettings(model_in_use(model), max_bytes, device, tuple(allow_origin)), workers)


def check_listen(host: str, port: int) -> None:
    """That this machine can listen on host:port, before the model loads: a bad address is a usage error, a
    port in use one line (uvicorn would log it and exit 3, which here means "some files failed")."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise UsageError(f"--host {host}: not an address to listen on ({getattr(e, 'strerror', None) or e})") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as e:
            raise DigitsError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
