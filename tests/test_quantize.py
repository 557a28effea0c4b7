"""Int8 inference: ranges recorded by training, the quantized model agrees with fp32, bad ranges are refused."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from digit_recognizer import Recognizer
from digit_recognizer.data.dataset import Split
from digit_recognizer.errors import DigitsError
from digit_recognizer.inference.device import BF16_MIN_BATCH, engine, int8_is_available, int8_is_fast
from digit_recognizer.training.loop import train
from digit_recognizer.training.recipes import make_config

# Ranges, int8 networks and their errors need only PyTorch's x86 quantized engine; int8's accuracy and
# `auto` choosing it need VNNI (without it the kernels' 16-bit sums can saturate). Int8 runs on the CPU only, so
# every recognizer here is pinned to it (on a GPU machine `auto` would choose CUDA).
pytestmark = pytest.mark.skipif(not int8_is_available(), reason="this PyTorch has no x86 quantized engine")
needs_vnni = pytest.mark.skipif(not int8_is_fast(), reason="no VNNI on this CPU: int8 is neither exact nor chosen")


@pytest.fixture(scope="module")
def run(mnist, tmp_path_factory):
    small = Split(mnist.train.images[:2000], mnist.train.labels[:2000])
    out = tmp_path_factory.mktemp("q") / "run"
    train(make_config("fast", epochs=1, batch_size=64), small, out, progress=False, log=lambda m: None)
    return out


@needs_vnni
def test_shipped_model_in_int8_matches_fp32_on_the_test_set(mnist):
    x, y = mnist.test.images, mnist.test.labels
    ref = Recognizer.load(precision="fp32", device="cpu").probabilities(x)
    q = Recognizer.load(precision="int8", device="cpu").probabilities(x)
    assert (q.argmax(1) == ref.argmax(1)).float().mean() >= 0.999
    assert (q.argmax(1) == y).float().mean() >= (ref.argmax(1) == y).float().mean() - 0.001
    assert (q - ref).abs().max() < 0.5  # probabilities move, but not wildly


def test_training_records_ranges_that_build_an_int8_network(run, mnist):
    meta = json.loads((run / "model.json").read_text())
    assert meta["int8_ranges"] and all(lo <= hi for lo, hi in meta["int8_ranges"].values())
    x = mnist.test.images[:BF16_MIN_BATCH]
    q, fp32 = (Recognizer.load(run, precision=p, device="cpu") for p in ("int8", "fp32"))
    assert not torch.equal(q.probabilities(x), fp32.probabilities(x))  # int8 really ran
    assert (q.probabilities(x).argmax(1) == fp32.probabilities(x).argmax(1)).float().mean() >= 0.9


@needs_vnni
def test_auto_uses_int8_for_one_image_as_for_a_batch(run, mnist):
    x = mnist.test.images[:BF16_MIN_BATCH]
    auto, q, fp32 = (Recognizer.load(run, precision=p, device="cpu") for p in ("auto", "int8", "fp32"))
    assert torch.equal(auto.probabilities(x), q.probabilities(x))  # a batch: int8
    assert torch.equal(auto.probabilities(x[:1]), q.probabilities(x[:1]))  # one image: int8 too
    assert not torch.equal(q.probabilities(x[:1]), fp32.probabilities(x[:1]))  # int8 really ran
    one = torch.stack([auto.probabilities(x[i:i + 1])[0] for i in range(8)])
    assert torch.allclose(one, auto.probabilities(x[:8]), atol=1e-5)  # alone as in a batch
    assert engine("auto", BF16_MIN_BATCH, True) == "int8" and engine("auto", 1, True) == "int8"
    assert engine("auto", 1, False) == "fp32"
    assert engine("auto", BF16_MIN_BATCH, False) in ("bf16", "fp32")


def test_models_without_or_with_bad_ranges(run, mnist, tmp_path):
    x = mnist.test.images[:BF16_MIN_BATCH]
    old = tmp_path / "old"
    shutil.copytree(run, old)
    meta = json.loads((old / "model.json").read_text())
    ranges = meta.pop("int8_ranges")
    (old / "model.json").write_text(json.dumps(meta))
    auto = Recognizer.load(old, device="cpu")
    assert auto.probabilities(x).shape == (len(x), 10)  # auto falls back to bf16 / fp32
    with pytest.raises(DigitsError, match="no int8 ranges"):
        Recognizer.load(old, precision="int8", device="cpu").probabilities(x)
    for broken, message in (({k: v for k, v in list(ranges.items())[1:]}, "do not match"),
                            ({**ranges, next(iter(ranges)): [1.0, 0.0]}, "bad int8 range"),
                            ({**ranges, next(iter(ranges)): ["a", "b"]}, "bad int8 range"),
                            ({**ranges, next(iter(ranges)): 5}, "bad int8 range"),
                            ({**ranges, next(iter(ranges)): [0.0, float("inf")]}, "bad int8 range")):
        (old / "model.json").write_text(json.dumps({**meta, "int8_ranges": broken}))
        with pytest.raises(DigitsError, match=message):
            Recognizer.load(old, precision="int8", device="cpu").probabilities(x)


def test_the_int8_body_runs_as_one_frozen_graph_that_answers_as_the_module(mnist, monkeypatch):
    from digit_recognizer.inference import int8
    from digit_recognizer.models.modelfile import load_model

    loaded = load_model(None)
    net, ranges = loaded.nets[0], loaded.member_meta[0]["int8_ranges"]
    fast = int8.quantize(net, ranges)
    assert isinstance(fast.body, torch.jit.ScriptModule)  # this PyTorch has TorchScript: the graph is used
    monkeypatch.setattr(int8, "frozen", lambda body: body)
    module = int8.quantize(net, ranges)
    assert not isinstance(module.body, torch.jit.ScriptModule)
    with torch.no_grad():
        for n in (1, 2, 7, 300):  # any batch size, not only the probes'
            x = mnist.test.images[n:2 * n].reshape(-1, 1, 28, 28)
            assert torch.equal(fast(x), module(x))


def test_a_failing_or_disagreeing_trace_leaves_the_module(monkeypatch):
    from digit_recognizer.inference import int8

    class Doubler(torch.nn.Module):
        def forward(self, x):
            return x * 2

    body = Doubler()

    def broken(*a, **k):
        raise RuntimeError("no TorchScript here")

    with monkeypatch.context() as m:
        m.setattr(torch.jit, "trace", broken)
        assert int8.frozen(body) is body
    with monkeypatch.context() as m:
        with int8.quiet():
            wrong = torch.jit.trace(lambda x: x * 3, torch.zeros(1, 1, 28, 28))
        m.setattr(torch.jit, "freeze", lambda traced: wrong)
        assert int8.frozen(body) is body  # answers differently on the probes: not used
    assert isinstance(int8.frozen(body), torch.jit.ScriptModule)  # a plain trace is used


def test_the_frozen_graph_answers_alike_from_many_threads(mnist):
    """The server predicts from worker threads: the graph, built and first run under concurrency, gives every
    thread the answer one thread gets."""
    from concurrent.futures import ThreadPoolExecutor

    x = mnist.test.images[:100]
    one = Recognizer.load(precision="int8", device="cpu")
    serial = torch.cat([one.probabilities(x[i:i + 1]) for i in range(len(x))])
    fresh = Recognizer.load(precision="int8", device="cpu")
    with ThreadPoolExecutor(8) as pool:
        par = torch.cat(list(pool.map(lambda i: fresh.probabilities(x[i % 100:i % 100 + 1]), range(800))))
    assert all(torch.equal(par[i], serial[i % 100]) for i in range(800))


@needs_vnni
def test_a_prepared_recognizer_builds_no_network_while_it_predicts(monkeypatch):
    """The shipped cascade's members are quantized by prepare(), as the server does before its first request;
    unprepared, the second member is built when the first unsure image arrives."""
    from digit_recognizer.inference import int8

    built = []
    real = int8.quantize
    monkeypatch.setattr(int8, "quantize", lambda *a, **k: built.append(1) or real(*a, **k))
    noise = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    fresh = Recognizer.load(device="cpu")
    assert fresh.int8_in_use() and fresh.cascade is not None
    probs = fresh.probabilities(noise)
    assert len(built) == len(fresh.loaded.nets)  # built while predicting: noise leaves the first member unsure
    built.clear()
    prepared = Recognizer.load(device="cpu").prepare()
    assert len(built) == len(prepared.loaded.nets)
    built.clear()
    assert torch.equal(prepared.probabilities(noise), probs)
    assert not built
