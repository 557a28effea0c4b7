"""Pictures (matplotlib PNGs) and one HTML page that shows them next to the metrics."""
from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any, Callable

import torch

from ..constants import NUM_CLASSES
from ..data.dataset import Split
from ..data.formats import atomic_write_bytes
from ..inference.evaluate import Evaluation
from ..training.rundir import RunDir

GRID = 5  # images per side in picture grids
TILE_SCALE = 3  # a 28-px digit is drawn 84 px wide
TITLE_PX = 13  # the size of a tile's title


def figure(w: float, h: float, layout: str | None = "constrained"):
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    return Figure(figsize=(w, h), dpi=100, layout=layout)


def save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def label_font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font shipped with Pillow
    except TypeError:
        return ImageFont.load_default()


def image_grid(images: torch.Tensor, titles: list[str], path: Path, colors: list[str] | None = None) -> None:
    """(N, H, W) images in an n x n mosaic, each enlarged TILE_SCALE times with its title above it, drawn with
    Pillow (matplotlib took 0.5 s a grid, most of the report's time, for pictures that are only pixels)."""
    from PIL import Image, ImageDraw

    n = int(len(images) ** 0.5 + 0.999) if len(images) else 1
    h, w = (s * TILE_SCALE for s in images.shape[-2:]) if len(images) else (1, 1)
    lines = max((t.count("\n") + 1 for t in titles), default=1)
    font = label_font(TITLE_PX)
    band, gap = lines * (TITLE_PX + 2) + 4, TITLE_PX  # px above each tile for its title, and between tiles
    cell_h, cell_w = band + h + gap, max(w, TITLE_PX * 9) + gap  # a title is up to ~17 characters wide
    page = Image.new("RGB", (n * cell_w, n * cell_h), "white")
    draw = ImageDraw.Draw(page)
    for i in range(len(images)):
        r, c = divmod(i, n)
        y, x = r * cell_h + band, c * cell_w + (cell_w - w) // 2
        tile = Image.fromarray(images[i].numpy()).resize((w, h), Image.Resampling.NEAREST)
        page.paste(tile.convert("RGB"), (x, y))
        for k, line in enumerate(titles[i].split("\n")):
            draw.text((x + w / 2, y - band + 2 + k * (TITLE_PX + 2)), line, fill=colors[i] if colors else "black",
                      font=font, anchor="mt")
    buf = io.BytesIO()
    page.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def sample_grid(split: Split, path: Path) -> None:
    k = min(GRID * GRID, len(split))
    image_grid(split.images[:k], [f"label {int(y)}" for y in split.labels[:k]], path)


def class_counts(splits: dict[str, Split], path: Path) -> None:
    fig = figure(8, 3.5)
    ax = fig.add_subplot()
    width = 0.8 / len(splits)
    for j, (name, s) in enumerate(splits.items()):
        counts = s.class_counts()
        ax.bar([d + (j - (len(splits) - 1) / 2) * width for d in range(NUM_CLASSES)], counts, width, label=name)
    ax.set_xticks(range(NUM_CLASSES))
    ax.set(xlabel="digit", ylabel="images", title="Class counts per split")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over the 9
    save(fig, path)


def learning_curves(history: list[dict[str, Any]], path: Path, label_smoothing: float = 0.0) -> None:
    """Loss and accuracy per epoch. The training loss is the one optimised (with label smoothing, which keeps it
    well above zero even when every image is right); the validation loss is plain cross-entropy: the legend says
    so, since the two are not on one scale."""
    from matplotlib.ticker import MaxNLocator

    fig = figure(9, 3.5)
    epochs = [h["epoch"] for h in history]
    smoothed = f" (label smoothing {label_smoothing:g})" if label_smoothing else ""
    for i, (key, label) in enumerate((("loss", "loss"), ("accuracy", "accuracy"))):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train" + (smoothed if key == "loss" else ""))
        ax.plot(epochs, [h[f"val_{key}"] for h in history], "o-",
                label="validation" + (" (plain cross-entropy)" if key == "loss" and smoothed else ""))
        ax.set(xlabel="epoch", ylabel=label, title=f"Learning curve: {label}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.legend()
    save(fig, path)


def confusion_matrix(cm: torch.Tensor, path: Path) -> None:
    fig = figure(6, 5.5)
    ax = fig.add_subplot()
    im = ax.imshow(cm.numpy(), cmap="Blues")
    for t in range(NUM_CLASSES):
        for p in range(NUM_CLASSES):
            v = int(cm[t, p])
            ax.text(p, t, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > cm.max().item() / 2 else "black")
    ax.set_xticks(range(NUM_CLASSES))
    ax.set_yticks(range(NUM_CLASSES))
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (test)")
    fig.colorbar(im, ax=ax)
    save(fig, path)


def predictions_grid(test: Split, ev: Evaluation, path: Path) -> None:
    k = min(GRID * GRID, len(test))
    preds = ev.preds[:k].tolist()
    titles = [f"pred {p} / true {int(t)}" for p, t in zip(preds, test.labels[:k])]
    colors = ["black" if p == int(t) else "red" for p, t in zip(preds, test.labels[:k])]
    image_grid(test.images[:k], titles, path, colors)


def worst_mistakes(test: Split, ev: Evaluation, path: Path) -> None:
    idx = ev.worst(GRID * GRID)
    titles = [f"true {int(test.labels[i])} p={ev.probs[i, test.labels[i]]:.2f}\n"
              f"pred {int(ev.preds[i])} p={ev.probs[i].max():.2f}" for i in idx]
    image_grid(test.images[idx], titles, path, ["red"] * len(idx))


PICTURES = {
    "samples.png": "Training samples", "class_counts.png": "Class balance",
    "learning_curves.png": "Learning curves", "confusion_matrix.png": "Confusion matrix",
    "predictions.png": "Test predictions", "worst_mistakes.png": "Worst mistakes (lowest probability of the true class)",
}


def write_report(run: RunDir, splits: dict[str, Split], history: list[dict[str, Any]], ev: Evaluation,
                 meta: dict[str, Any]) -> Path:
    """All six pictures into the run's report/, and its report.html showing them with the metrics."""
    run_dir, out = run.path, run.report_dir
    out.mkdir(parents=True, exist_ok=True)
    test = splits["test"]
    sample_grid(splits["train"], out / "samples.png")
    class_counts(splits, out / "class_counts.png")
    learning_curves(history, out / "learning_curves.png",
                    float(meta.get("training", {}).get("label_smoothing", 0.0) or 0.0))
    confusion_matrix(ev.confusion(), out / "confusion_matrix.png")
    predictions_grid(test, ev, out / "predictions.png")
    worst_mistakes(test, ev, out / "worst_mistakes.png")
    rows = "".join(f"<tr><td>{c['digit']}</td><td>{c['precision']:.4f}</td><td>{c['recall']:.4f}</td>"
                   f"<td>{c['support']}</td></tr>" for c in ev.per_class())
    figs = "".join(f'<figure><img src="{out.name}/{f}" alt="{html.escape(t)}"><figcaption>{html.escape(t)}'
                   f"</figcaption></figure>" for f, t in PICTURES.items())
    arch = meta.get("architecture", {}).get("name", "?")
    val_acc = meta.get("metrics", {}).get("val_accuracy", history[-1]["val_accuracy"])
    kind = f" &times; {len(meta['members'])} members, averaged with test-time shifts" if "members" in meta else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>digits report: {html.escape(run_dir.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
figure{{display:inline-block;margin:1em;vertical-align:top}}img{{max-width:100%}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style></head>
<body><h1>digits report: {html.escape(run_dir.name)}</h1>
<p>Model <b>{html.escape(arch)}</b>{kind}, {meta.get("parameters", 0):,} parameters.
Test accuracy <b>{ev.accuracy * 100:.2f}%</b> ({len(ev.labels) - round(ev.accuracy * len(ev.labels))} errors
in {len(ev.labels):,}). Validation accuracy {val_acc * 100:.2f}%.</p>
<table><tr><th>digit</th><th>precision</th><th>recall</th><th>support</th></tr>{rows}</table>
{figs}
<details><summary>Model description (JSON)</summary><pre>{html.escape(json.dumps(meta, indent=2))}</pre></details>
</body></html>"""
    atomic_write_bytes(run.report_page, page.encode())
    return run.report_page


def report_run(run_dir: Path, train: Split, test: Split,
               on_result: Callable[[Evaluation], None] | None = None) -> tuple[Path, Evaluation]:
    """Evaluate a run's model on the test split, record the metrics in its JSON, and (re)write the report.
    `on_result` hears the evaluation before the pictures are drawn (the CLI prints the accuracy first)."""
    from ..data.dataset import train_val_split
    from ..errors import DigitsError
    from ..inference.evaluate import evaluate
    from ..inference.recognizer import Recognizer
    from ..models.modelfile import read_json, update_metrics
    from ..training.rundir import RunDir

    run = RunDir(run_dir)
    cfg = run.read_config()
    history = run.read_metrics()
    if not history:
        raise DigitsError(f"{run.path}: no finished epoch to report")
    recognizer = Recognizer.load(run.path)
    ev = evaluate(recognizer, test)
    update_metrics(run.model_json, {"test_accuracy": ev.accuracy, "test_errors": ev.to_dict()["errors"]})
    if on_result is not None:
        on_result(ev)
    try:
        tr, va = train_val_split(train, float(cfg["val_fraction"]), int(cfg["split_seed"]))
    except (KeyError, TypeError, ValueError) as e:
        raise DigitsError(f"{run.config}: no usable validation split settings ({e})") from None
    page = write_report(run, {"train": tr, "validation": va, "test": test}, history, ev, read_json(run.model_json))
    return page, ev
