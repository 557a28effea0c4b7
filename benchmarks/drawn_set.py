"""Digits drawn on the drawing page, stroke by stroke, in a real browser, and how well they are read.

    python benchmarks/drawn_set.py [--per-digit 20] [--seed 0]

Nobody here can hand-draw, so each digit is a stroke template written by us (two styles for most digits),
distorted per drawing (rotation, size, slant, position, wobble) and drawn with the mouse through Playwright
on the page `digits serve` shows, exactly as a person with a mouse would. The page's own answer is read back.
Needs Debian's chromium at /usr/bin/chromium (scripts/setup.sh installs it).
"""
from __future__ import annotations

import argparse
import math
import time
from collections import Counter

import numpy as np

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
# Strokes as (x, y) points in 0..1 of the pad, y down; several styles per digit.
TEMPLATES: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[[(0.5 + 0.22 * math.sin(a), 0.5 - 0.32 * math.cos(a)) for a in np.linspace(0, 2 * math.pi, 17)]]],
    1: [[[(0.5, 0.15), (0.5, 0.85)]], [[(0.38, 0.27), (0.53, 0.15), (0.53, 0.85)]]],
    2: [[[(0.28, 0.3), (0.35, 0.18), (0.5, 0.14), (0.65, 0.18), (0.7, 0.3), (0.65, 0.45), (0.28, 0.82),
          (0.75, 0.82)]]],
    3: [[[(0.3, 0.2), (0.5, 0.14), (0.67, 0.22), (0.65, 0.38), (0.48, 0.48), (0.68, 0.58), (0.7, 0.74),
          (0.52, 0.85), (0.3, 0.78)]]],
    4: [[[(0.6, 0.15), (0.25, 0.62), (0.75, 0.62)], [(0.6, 0.15), (0.6, 0.85)]],
        [[(0.3, 0.15), (0.28, 0.55), (0.72, 0.55)], [(0.65, 0.2), (0.65, 0.85)]]],
    5: [[[(0.7, 0.15), (0.35, 0.15), (0.32, 0.45), (0.5, 0.42), (0.67, 0.5), (0.7, 0.67), (0.58, 0.82),
          (0.3, 0.8)]],
        [[(0.35, 0.15), (0.32, 0.45), (0.5, 0.42), (0.67, 0.5), (0.7, 0.67), (0.58, 0.82), (0.3, 0.8)],
         [(0.36, 0.15), (0.7, 0.14)]]],
    6: [[[(0.62, 0.15), (0.42, 0.35), (0.32, 0.6), (0.36, 0.78), (0.5, 0.85), (0.65, 0.78), (0.67, 0.62),
          (0.52, 0.52), (0.36, 0.6)]]],
    7: [[[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]], [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)], [(0.4, 0.5),
                                                                                               (0.7, 0.5)]]],
    8: [[[(0.62, 0.22), (0.5, 0.14), (0.36, 0.22), (0.4, 0.38), (0.6, 0.55), (0.65, 0.72), (0.5, 0.85),
          (0.35, 0.72), (0.4, 0.55), (0.6, 0.38), (0.64, 0.22)]]],
    9: [[[(0.65, 0.3), (0.5, 0.18), (0.35, 0.28), (0.38, 0.43), (0.55, 0.45), (0.65, 0.3), (0.62, 0.6),
          (0.55, 0.85)]],
        [[(0.65, 0.3), (0.5, 0.18), (0.35, 0.28), (0.38, 0.43), (0.55, 0.45), (0.65, 0.3)], [(0.65, 0.3),
                                                                                            (0.65, 0.85)]]],
}


def distort(strokes, rng: np.random.Generator):
    """One person's version of a template: rotation, size, slant, position and a wobbly hand."""
    a, s, shear = math.radians(rng.uniform(-12, 12)), rng.uniform(0.7, 1.1), rng.uniform(-0.25, 0.1)
    dx, dy = rng.uniform(-0.08, 0.08, 2)
    out = []
    for stroke in strokes:
        p = np.asarray(stroke) - 0.5
        p = p + rng.normal(0, 0.012, p.shape)
        p[:, 0] += shear * p[:, 1]
        p = s * p @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        out.append([(float(x) + 0.5 + dx, float(y) + 0.5 + dy) for x, y in np.clip(p, -0.47, 0.47)])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-digit", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from digit_recognizer.testing.localserver import local_server

    rng = np.random.default_rng(args.seed)
    results: list[tuple[int, str]] = []
    with local_server() as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(url)
            box = page.locator("#pad").bounding_box()
            for digit, styles in TEMPLATES.items():
                for k in range(args.per_digit):
                    page.click("#clear")
                    for stroke in distort(styles[k % len(styles)], rng):
                        (x0, y0), rest = stroke[0], stroke[1:]
                        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
                        page.mouse.down()
                        for x, y in rest:
                            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=6)
                        page.mouse.up()
                    time.sleep(0.5)  # the page predicts 150 ms after the last stroke: wait for that answer
                    page.wait_for_function("document.body.dataset.prediction !== undefined", timeout=10_000)
                    got = page.evaluate("[document.body.dataset.prediction, document.body.dataset.refused]")
                    results.append((digit, "?" if got[1] == "true" else got[0]))
            browser.close()
    right = sum(str(d) == got for d, got in results)
    refused = sum(got == "?" for _, got in results)
    print(f"{len(results)} drawings ({args.per_digit} per digit): {right / len(results) * 100:.2f}% read right, "
          f"{refused} refused")
    wrong = Counter(f"{d}->{got}" for d, got in results if str(d) != got)
    print("mistakes (true->read, ? = refused):", dict(wrong.most_common()) or "none")
    from results import save

    save("drawn_set", "Digits drawn with the mouse on the drawing page (Chromium), read by the page",
         ["drawings", "read right %", "refused", "mistakes"],
         [[len(results), round(right / len(results) * 100, 2), refused,
           ", ".join(f"{k} x{v}" for k, v in wrong.most_common()) or "none"]],
         notes="Stroke templates we wrote, each drawing rotated, resized, slanted, moved and wobbled.")


if __name__ == "__main__":
    main()
