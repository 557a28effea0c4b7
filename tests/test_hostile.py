"""Hostile and careless input: small files that decode huge, component floods, broken JSON, other sites' pages,
special files, hostile model descriptions, a gzip bomb on a mirror, killed writers' leftovers. Each is answered
with one line (or a 4xx), quickly, without a large allocation."""
from __future__ import annotations

import gzip
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_digits
from digit_recognizer.data.formats import atomic_write_bytes
from digit_recognizer.errors import DigitsError
from digit_recognizer.inference.reader import PARAMS, preprocess
from digit_recognizer.inference.reader.decode import open_image, to_gray

MAX_WORKING_SIDE = PARAMS.decode.working_side
from digit_recognizer.inference.recognizer import Recognizer
from digit_recognizer.models.modelfile import default_model_path, load_model
from digit_recognizer.testing import hostile

# Every hostile request is answered within this. The slowest, a 7000x7000 RGBA PNG (196 MB decoded), takes about
# 0.6 s on an Intel Xeon core with the model prepared as a server prepares it (the first request to an unprepared
# model also paid for its int8 build, and took up to 3 s there): a hang takes far longer. Timed as the better of
# TRIES: on a shared machine one try can stall (the same request took 1.8-3.1 s after the fast tier's other
# tests, 0.6 s alone), where a hang or quadratic work is slow every time.
QUICK_S = 2.5
TRIES = 2
WORKING_MB = 64  # what shrinking a decoded image may allocate through NumPy, whatever its size


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer.load().prepare()  # as a server prepares it before its first request, which is timed here


def serving():
    """TestClient and create_app, or a skip saying why where the serve extra is not installed (a GPU machine
    without FastAPI runs the rest of this file)."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from fastapi.testclient import TestClient

    from digit_recognizer.app.serve import create_app
    return TestClient, create_app


@pytest.fixture(scope="module")
def client(recognizer):
    TestClient, create_app = serving()
    return TestClient(create_app(recognizer), raise_server_exceptions=False)


def post(client, item: hostile.Hostile, **headers):
    if item.content_type == "application/json":
        return client.post(item.path, content=item.body, headers={"content-type": item.content_type, **headers})
    return client.post(item.path, files={"file": ("f", item.body, item.content_type)}, headers=headers)


@pytest.mark.parametrize("make", [hostile.big_16bit_png, hostile.big_float_tiff, hostile.big_rgba_png])
def test_large_decoded_images_are_shrunk_before_any_float_work(make):
    img = open_image(make())
    tracemalloc.start()
    try:
        gray = to_gray(img)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert max(gray.shape) <= MAX_WORKING_SIDE
    assert peak < WORKING_MB << 20, f"{peak / 2**20:.0f} MB"


@pytest.mark.parametrize("item", hostile.all_inputs(), ids=lambda h: h.name)
def test_every_hostile_request_is_answered_quickly_without_a_500(client, item):
    times = []
    for _ in range(TRIES):
        start = time.perf_counter()
        r = post(client, item)
        times.append(time.perf_counter() - start)
        assert r.status_code < 500, r.text
        if times[-1] < QUICK_S:
            break
    assert min(times) < QUICK_S, " and ".join(f"{t:.2f} s" for t in times)
    if r.status_code >= 400:
        assert set(r.json()) == {"error"}


@pytest.mark.parametrize("body, status", [(hostile.deep_json(), 400), (hostile.huge_int_json(), 400),
                                          (hostile.overflow_json(), 422), (hostile.large_json(), 413)])
def test_json_that_breaks_parsers_is_a_4xx(client, body, status):
    r = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and "error" in r.json()


def test_component_floods_are_refused_and_many_components_are_read_fast(client):
    r = client.post("/api/read", files={"file": ("lines.png", hostile.many_lines_png(600), "image/png")})
    assert r.status_code == 200 and r.json()["refused"] and "separate marks" in r.json()["reason"]
    start = time.perf_counter()
    r = client.post("/api/read", files={"file": ("lines.png", hostile.many_lines_png(400), "image/png")})
    assert r.status_code == 200 and time.perf_counter() - start < QUICK_S


def test_a_request_may_not_ask_for_more_pixels_than_its_budget(client):
    big = hostile.big_16bit_png()
    files = [("file", (f"{k}.png", big, "image/png")) for k in range(3)]  # 3 x 49 M pixels
    r = client.post("/api/predict", files=files)
    assert r.status_code == 413 and "pixels" in r.json()["error"]


def test_other_sites_pages_are_refused_unless_allowed(recognizer, client):
    png = hostile.png(Image.new("L", (40, 40), 255))
    r = client.post("/api/predict", files={"file": ("a.png", png, "image/png")},
                    headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and "--allow-origin https://evil.example" in r.json()["error"]
    own = client.post("/api/predict", files={"file": ("a.png", png, "image/png")},
                      headers={"origin": "http://testserver"})
    assert own.status_code == 200 and own.json()["refused"]  # its own page: let through (a blank is refused)
    TestClient, create_app = serving()
    allowing = TestClient(create_app(recognizer, allow_origins=("https://evil.example",)))
    r = allowing.post("/api/predict", files={"file": ("a.png", png, "image/png")},
                      headers={"origin": "https://evil.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://evil.example"


def test_model_info_names_the_model_not_its_path_and_bad_parameters_are_error_json(client):
    info = client.get("/api/model").json()
    assert info["name"] == "shipped" and len(info["sha256"]) == 64
    assert str(default_model_path().parent) not in json.dumps(info)
    r = client.post("/api/predict?image=bad", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 422 and set(r.json()) == {"error"} and "image" in r.json()["error"]


def special_files(tmp_path) -> list[Path]:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    return [fifo, Path("/dev/zero")]


def test_special_files_are_refused_without_reading(tmp_path):
    for path in special_files(tmp_path):
        out: list = []
        t = threading.Thread(target=lambda: out.append(pytest.raises(DigitsError, preprocess, path)), daemon=True)
        t.start()
        t.join(5)
        assert out, f"{path}: still reading after 5 s"
        assert "not a regular file" in str(out[0].value)


@pytest.mark.smoke
def test_one_bad_file_does_not_stop_the_others(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.pad(np.full((60, 12), 0, np.uint8), 40, constant_values=255)).save(good)
    odd = tmp_path / "two\nlines.png"
    shutil.copy(good, odd)
    fifo = special_files(tmp_path)[0]
    res = run_digits("predict", str(good), str(fifo), str(odd), timeout=60)
    assert res.returncode == 3, res.stderr
    assert len(res.stdout.splitlines()) == 2 and "two\\nlines.png" in res.stdout
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "not a regular file" in errors[0]


def model_copy(tmp_path: Path, **changes) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    shipped = default_model_path()
    top = json.loads(shipped.read_text())
    one = shipped.with_name(top["members"][0]) if "members" in top else shipped  # one network of the model
    meta = json.loads(one.read_text())
    shutil.copy(one.with_name(meta["weights"]), folder / "model.safetensors")
    for f in shipped.parent.glob(f"{shipped.stem}-marker.*"):  # its marker reader
        shutil.copy(f, folder / f.name)
    meta["weights"] = "model.safetensors"
    if "marker_reader" in top:
        meta["marker_reader"] = top["marker_reader"]
    arch = changes.pop("architecture", {})
    meta["architecture"] = {**meta["architecture"], **arch}
    meta.update(changes)
    (folder / "model.json").write_text(json.dumps(meta))
    return folder / "model.json"


HOSTILE_SPECS = {
    "huge conv": dict(architecture={"layers": ["c100000"]}),
    "huge dense": dict(architecture={"hidden": [300000]}),
    "negative width": dict(architecture={"hidden": [-5]}),
    "dropout 2": dict(architecture={"dropout": 2.0}),
    "no members": dict(members=[]),
    "member not a name": dict(members=[123]),
    "hot temperature": dict(temperature="hot"),
    "zero temperature": dict(temperature=0),
    "tta as a string": dict(tta="false"),
    "score threshold as a string": dict(min_score="3.4"),
    "score threshold not finite": dict(min_score=float("nan")),
    "weights elsewhere": dict(weights="../../etc/passwd"),
    "member elsewhere": dict(members=["../../etc/passwd"]),
    "marker reader not a name": dict(marker_reader=["model.json"]),
    "marker reader elsewhere": dict(marker_reader="../../etc/passwd"),
}


@pytest.mark.parametrize("name", HOSTILE_SPECS)
def test_hostile_model_descriptions_are_one_line_errors(tmp_path, name):
    path = model_copy(tmp_path, **HOSTILE_SPECS[name])
    tracemalloc.start()
    try:
        with pytest.raises(DigitsError) as e:
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "\n" not in str(e.value) and peak < WORKING_MB << 20
    if name.endswith("elsewhere"):
        assert "outside the model's folder" in str(e.value)


def test_model_files_that_break_parsers_or_point_at_devices(tmp_path):
    path = model_copy(tmp_path)
    text = path.read_text()
    for bad in (text.replace('"hidden": [', '"hidden": [' + "9" * 4301 + ", "),
                '{"format": "digits-model", "a": ' + "[" * 100_000 + "]" * 100_000 + "}"):
        path.write_text(bad)
        with pytest.raises(DigitsError, match="not valid JSON"):
            load_model(path)
    path.write_text(text)
    weights = path.with_suffix(".safetensors")
    weights.unlink()
    weights.symlink_to("/dev/zero")
    with pytest.raises(DigitsError, match="not a regular file"):
        load_model(path)


def test_non_finite_weights_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    path = model_copy(tmp_path)
    tensors = load_file(path.with_suffix(".safetensors"))
    next(t for t in tensors.values() if t.is_floating_point()).view(-1)[0] = float("nan")
    save_file(tensors, path.with_suffix(".safetensors"))
    with pytest.raises(DigitsError, match="NaN"):
        load_model(path)


class BombHandler(http.server.BaseHTTPRequestHandler):
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MB in about 64 KB

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.bomb)))
        self.end_headers()
        self.wfile.write(self.bomb)

    def log_message(self, *args):
        pass


def test_a_gzip_bomb_on_a_mirror_is_refused_while_streaming():
    from digit_recognizer.data.sources import from_mirrors

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BombHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log: list[str] = []
    try:
        tracemalloc.start()
        got = from_mirrors(["t10k-labels-idx1-ubyte"], (f"http://127.0.0.1:{server.server_port}/",), 5.0,
                           False, log.append)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        server.shutdown()
    assert got == {} and any("decompresses to more than" in line for line in log), log
    assert peak < 8 << 20


@pytest.mark.smoke
def test_killed_writers_leftovers_are_removed_on_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".model.json.{dead}.tmp"
    alive = tmp_path / f".model.json.{os.getppid()}.tmp"  # a writer that is still running
    other = tmp_path / f".metrics.jsonl.{dead}.tmp"
    for f in (stale, alive, other):
        f.write_bytes(b"half")
    atomic_write_bytes(tmp_path / "model.json", b"{}")
    assert not stale.exists() and alive.exists() and other.exists()


def test_a_stalled_body_is_dropped(monkeypatch):
    serving()
    import anyio
    from starlette.requests import Request

    from digit_recognizer.app import intake

    monkeypatch.setattr(intake, "BODY_TIMEOUT_S", 0.3)

    async def stalls():
        yield {"type": "http.request", "body": b"0123456789", "more_body": True}
        await anyio.sleep(60)

    messages = stalls()

    async def receive():
        return await messages.__anext__()

    scope = {"type": "http", "method": "POST", "path": "/api/predict", "headers": [(b"content-length", b"1000")]}
    start = time.perf_counter()
    with pytest.raises(intake.RequestError) as e:
        anyio.run(intake.read_body, Request(scope, receive), 10_000)
    assert e.value.status == 408 and time.perf_counter() - start < 5


@pytest.mark.slow
def test_a_client_that_never_finishes_its_headers_is_disconnected():
    import socket

    serving()
    from digit_recognizer.app.slowclients import HEADER_TIMEOUT_S
    from digit_recognizer.testing.localserver import local_server

    with local_server() as url:
        s = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # no blank line: the headers never end
        s.settimeout(HEADER_TIMEOUT_S + 5)
        start = time.perf_counter()
        assert s.recv(100) == b""  # closed by the server, not answered
        assert time.perf_counter() - start < HEADER_TIMEOUT_S + 2


@pytest.mark.parametrize("shape", [(5000, 1), (1, 5000), (3000, 2), (2, 9000), (5000, 3), (1, 1)])
def test_slivers_of_images_get_an_answer_or_one_line(recognizer, shape):
    """An image one or two pixels across, shrunk for work, keeps a row or column (it lost its last one and
    crashed the background step)."""
    import io

    a = np.full(shape, 235, np.uint8)
    a[tuple(slice(s // 10, s - s // 10) if s > 2 else slice(0, 1) for s in shape)] = 20
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    for fn in (recognizer.predict, recognizer.read):
        try:
            fn(buf.getvalue())
        except DigitsError as e:
            assert "\n" not in str(e)
