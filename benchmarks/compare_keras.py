"""Side-by-side benchmark: the tutorial's Keras code vs digits, same data, same machine, one run.

    python benchmarks/compare_keras.py [--keras-epochs 10] [--fast-seeds 5] [--tutorial-epochs 10]

Installs TensorFlow (CPU) into benchmarks/.venv-keras on first use: a benchmark dependency only.
Prints a table of medians and ratios (ours vs Keras); the machines are noisy, so quote ratios.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KERAS_VENV = HERE / ".venv-keras"
TF_REQUIREMENT = "tensorflow-cpu==2.21.0"
TARGET = 0.992


def keras_python() -> Path:
    py = KERAS_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(KERAS_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", TF_REQUIREMENT], check=True)
    return py


def run_keras(data_dir: Path, epochs: int) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([str(keras_python()), str(HERE / "keras_tutorial.py"), str(data_dir), "--epochs",
                          str(epochs)], check=True, capture_output=True, text=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall_seconds"] = time.perf_counter() - t0
    return res


def run_ours_train(args: list[str], out: Path) -> tuple[float, dict]:
    """Whole `digits train` command into `out`, wall time, and the model JSON it wrote."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from digit_recognizer.app.cli import main; main()", "train", *args,
                    "--out", str(out), "--no-progress"], check=True, capture_output=True)
    wall = time.perf_counter() - t0
    meta = json.loads((out / "model.json").read_text())
    meta["history"] = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return wall, meta


def our_inference(tutorial_run: Path) -> dict:
    """The trained tutorial CNN through Recognizer, at the default precision ("auto") and the others."""
    code = r"""
import json, resource, sys, time, statistics, torch
from digit_recognizer.data import load_mnist
from digit_recognizer.inference.recognizer import Recognizer
ds = load_mnist(progress=False)
x, y = ds.test.images, ds.test.labels
def batch(rec):
    rec.probabilities(x[:256])
    reps = []
    for _ in range(5):
        t0 = time.perf_counter(); p = rec.probabilities(x); reps.append(time.perf_counter() - t0)
    return statistics.median(reps), p.argmax(1)
engines = {}
for precision in ("fp32", "bf16", "int8", "auto"):  # auto last: the number quoted, after the others warmed up
    seconds, pred = batch(Recognizer.load(sys.argv[1], precision=precision))
    engines[precision] = {"seconds": round(seconds, 4), "test_accuracy": (pred == y).float().mean().item()}
rec = Recognizer.load(sys.argv[1])
def latency(r):
    one = x[0].numpy()
    lat = []
    for i in range(300):
        t0 = time.perf_counter(); r.predict(one); lat.append(time.perf_counter() - t0)
    return statistics.median(lat[30:]) * 1e3
print(json.dumps({"predict_10k_seconds_median": engines["auto"]["seconds"], "engines": engines,
                  "single_latency_ms_median": latency(rec),
                  "shipped_latency_ms_median": latency(Recognizer.load()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
    out = subprocess.run([sys.executable, "-c", code, str(tutorial_run)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def gemm_gflops() -> dict:
    """What this CPU's cores do on a large matrix product, fp32 and bf16: a practical peak."""
    code = r"""
import json, time, torch
out = {}
for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    a = torch.randn(2048, 2048).to(dt); b = torch.randn(2048, 2048).to(dt)
    a @ b
    best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(10))
    out[name] = 2 * 2048 ** 3 / best / 1e9
print(json.dumps(out))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def tutorial_train_flops_per_image() -> float:
    """Forward FLOPs of the tutorial CNN per image, times 3 for forward + backward (2 FLOPs per MAC)."""
    from digit_recognizer.models.net import build_model, forward_flops

    return 3 * forward_flops(build_model("tutorial"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keras-epochs", type=int, default=10)
    ap.add_argument("--fast-seeds", type=int, default=5)
    ap.add_argument("--tutorial-epochs", type=int, default=10)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    from digit_recognizer.data import fetch_mnist

    data_dir = fetch_mnist(progress=False).data_dir
    print(f"data: {data_dir}", file=sys.stderr)

    print("running the Keras tutorial ...", file=sys.stderr)
    keras = run_keras(data_dir, args.keras_epochs)
    k_epochs = keras["epochs"]
    k_hit = next((e for e in k_epochs if e["test_accuracy"] >= TARGET), None)
    k_time = (keras["setup_seconds"] + sum(e["seconds"] for e in k_epochs[:k_hit["epoch"]])) if k_hit else None

    with tempfile.TemporaryDirectory(prefix="digits-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print("running digits train (fast) ...", file=sys.stderr)
        fast = [run_ours_train(["--seed", str(s)], tmp / f"fast-{s}") for s in range(args.fast_seeds)]
        print(f"running digits train --recipe tutorial --epochs {args.tutorial_epochs} ...", file=sys.stderr)
        _, tut = run_ours_train(["--recipe", "tutorial", "--epochs", str(args.tutorial_epochs)], tmp / "tutorial")
        print("running inference ...", file=sys.stderr)
        inf = our_inference(tmp / "tutorial")  # the tutorial CNN just trained
    fast_wall = statistics.median(w for w, _ in fast)
    fast_acc = statistics.mean(m["metrics"]["test_accuracy"] for _, m in fast)
    times = [h["seconds"] for h in tut["history"]]  # cumulative, training + validation
    our_epoch = statistics.median(b - a for a, b in zip([0.0] + times, times))
    k_epoch = statistics.median(e["seconds"] for e in k_epochs)
    gemm = gemm_gflops()
    train_gflops = tutorial_train_flops_per_image() * tut["training"]["train_size"] / our_epoch / 1e9

    rows = [
        ("time to >= 99.2% test acc (s)", k_time, fast_wall if fast_acc >= TARGET else None,
         f"keras: first epoch at >= 99.2%, - = never; ours: whole `digits train`, median of "
         f"{args.fast_seeds} seeds, mean acc {fast_acc:.4f}"),
        ("tutorial CNN, s per epoch", k_epoch, our_epoch, "batch 32, median epoch incl. validation"),
        ("predict 10k test images (s)", keras["predict_10k_seconds_median"], inf["predict_10k_seconds_median"],
         "median of 5, trained tutorial CNN, default precision (auto)"),
        *((f"  ours in {p}", None, e["seconds"], f"test accuracy {e['test_accuracy']:.4f}")
          for p, e in inf["engines"].items() if p != "auto"),
        ("single image latency (ms)", keras["single_latency_ms_median"], inf["single_latency_ms_median"],
         "median, tutorial CNN; ours includes preprocessing"),
        ("  shipped model, latency (ms)", None, inf["shipped_latency_ms_median"], "Recognizer.predict"),
        ("peak RSS, inference process (MB)", keras["peak_rss_mb"], inf["peak_rss_mb"],
         "keras process also trained"),
    ]
    print(f"\n{'measure':<36}{'keras':>10}{'digits':>10}{'speed-up':>10}  note")
    for name, k, o, note in rows:
        ratio = f"{k / o:.2f}x" if k and o else "n/a"
        fmt = lambda v: f"{v:.3f}" if v is not None else "-"
        print(f"{name:<36}{fmt(k):>10}{fmt(o):>10}{ratio:>10}  {note}")
    if k_time is None:
        k_total = keras["setup_seconds"] + sum(e["seconds"] for e in k_epochs)
        print(f"\nKeras did not reach {TARGET:.1%} in {len(k_epochs)} epochs ({k_total:.1f} s); against that lower "
              f"bound, ours is >= {k_total / fast_wall:.1f}x faster to {TARGET:.1%}")
    print(f"\ntutorial recipe ({args.tutorial_epochs} epochs): test accuracy ours "
          f"{tut['metrics']['test_accuracy']:.4f}, Keras {k_epochs[-1]['test_accuracy']:.4f}; bf16 {tut['training']['bf16']}")
    print(f"tutorial training step: {train_gflops:.0f} GFLOP/s achieved; this CPU's large-GEMM throughput "
          f"{gemm['fp32']:.0f} GFLOP/s fp32, {gemm['bf16']:.0f} GFLOP/s bf16 (torch.mm 2048x2048)")
    print("ours, fast recipe per seed: " + json.dumps([{"wall_s": round(w, 1), "test": m["metrics"]["test_accuracy"]}
                                                        for w, m in fast]))
    print(f"TensorFlow {keras['tensorflow']}; Keras epochs: " + json.dumps(k_epochs))
    from results import save

    save("compare_keras", "Side by side with the tutorial's Keras code",
         ["measure", "Keras", "digits", "Keras/digits", "note"],
         [[name, k if k is not None else "-", o if o is not None else "-",
           round(k / o, 2) if k and o else "-", note] for name, k, o, note in rows],
         notes=(f"Keras did not reach {TARGET:.1%} in {len(k_epochs)} epochs; " if k_time is None else "")
               + f"TensorFlow {keras['tensorflow']}; tutorial recipe test accuracy ours "
               f"{tut['metrics']['test_accuracy']:.4f}, Keras {k_epochs[-1]['test_accuracy']:.4f}.")


if __name__ == "__main__":
    main()
