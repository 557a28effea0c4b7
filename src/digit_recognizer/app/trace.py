"""`digits trace`: what the reader did to one image, as one PNG per step with its facts, the time it took and an
index.html.

    write_trace(trace, answer, out) -> out / "index.html"

In the manner of tesseract's dumps of its intermediate images: each step's output as the next step gets it.
Grey images are shown as they are (0..255); a stack of views side by side.
"""
from __future__ import annotations

import html
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.formats import atomic_write_files
from ..inference.reader import Stage, Trace, Views

SHOWN_SIDE = 280  # px: a step's picture is enlarged (nearest) to at least this on its longer side, for the eye
BOX_GREY = 128  # the crop's boxes, and the gap between views, in a grey that is neither ink nor paper


def picture(output: object, page: np.ndarray | None = None, scale: float = 1.0) -> np.ndarray | None:
    """A step's output as a (h, w) uint8 picture. The crop step's cuts are shown as their boxes on the `page` the
    step cut them from (its boxes are in px of the image as given; `scale`: working px per such px), or where
    there is no page, as the first cut."""
    if isinstance(output, Views):
        output = output.images
    if isinstance(output, list) and output and hasattr(output[0], "image"):  # the crop step's cuts
        return boxed(page, [c.box for c in output], scale) if page is not None else picture(output[0].image)
    if not isinstance(output, np.ndarray):
        return None
    a = np.asarray(output, np.float32)
    if a.ndim == 3:  # (V, 28, 28) views side by side, a gap between
        a = np.concatenate([np.pad(v, ((0, 0), (0, 2)), constant_values=BOX_GREY) for v in a], axis=1)[:, :-2]
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def boxed(page: np.ndarray, boxes: list[tuple[int, int, int, int]], scale: float) -> np.ndarray:
    """The page (ink bright) with each box (x, y, w, h, px of the image as given) outlined in grey."""
    from PIL import ImageDraw

    img = Image.fromarray(picture(page))
    draw = ImageDraw.Draw(img)
    for x, y, w, h in boxes:
        draw.rectangle([x * scale, y * scale, (x + w) * scale - 1, (y + h) * scale - 1], outline=BOX_GREY)
    return np.asarray(img)


def pictures(trace: Trace) -> list[np.ndarray | None]:
    """Each stage's picture, the crop's drawn on the page the lines step left."""
    scale = next((s.facts.get("scale", 1.0) for s in trace.stages if s.step == "decode"), 1.0)
    out, page = [], None
    for s in trace.stages:
        out.append(picture(s.output, page, scale))
        if s.step == "lines":
            page = s.output
    return out


def png(a: np.ndarray) -> bytes:
    img = Image.fromarray(a)
    zoom = max(1, SHOWN_SIDE // max(a.shape))
    if zoom > 1:
        img = img.resize((a.shape[1] * zoom, a.shape[0] * zoom), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def stage_name(i: int, s: Stage) -> str:
    return f"{i:02d}-{s.step}" + ("" if s.digit is None else f"-digit{s.digit}")


def steps_json(trace: Trace) -> list[dict]:
    """The steps as the API answers them: name, digit (for a number's per-digit steps), facts, and the picture
    as a data URL."""
    import base64

    out = []
    for s, a in zip(trace.stages, pictures(trace)):
        url = None if a is None else "data:image/png;base64," + base64.b64encode(png(a)).decode()
        out.append({"step": s.step, "digit": s.digit, "facts": s.facts, "ms": round(s.ms, 3), "png": url})
    return out


def write_trace(trace: Trace, answer: dict, out: Path) -> Path:
    """One PNG per step into `out`, and index.html listing them in order with their facts and the answer."""
    files, rows = [], []
    for i, (s, a) in enumerate(zip(trace.stages, pictures(trace))):
        name = stage_name(i, s)
        cell = ""
        if a is not None:
            files.append((out / f"{name}.png", png(a)))
            cell = f'<img src="{name}.png" alt="{html.escape(s.step)}">'
        facts = html.escape(json.dumps(s.facts))
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{cell}</td><td>{s.ms:.2f}</td><td><code>{facts}</code></td>"
                    "</tr>")
    refused = f"<p>Refused at {html.escape(trace.refused)}</p>" if trace.refused else ""
    page = ("<!doctype html><meta charset=utf-8><title>digits trace</title>"
            "<style>body{font-family:sans-serif}td{vertical-align:top;padding:6px}img{image-rendering:pixelated;"
            "max-width:560px}</style><h1>What the reader did</h1>"
            f"<p>Answer: <code>{html.escape(json.dumps(answer))}</code></p>{refused}"
            "<table><tr><th>step</th><th>its output</th><th>ms</th><th>facts</th></tr>" + "".join(rows) + "</table>")
    files.append((out / "index.html", page.encode()))
    atomic_write_files(files)
    return out / "index.html"
