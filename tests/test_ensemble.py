"""Ensembles: training N members, loading them through the one loader, averaging with shifted views, resume."""
from __future__ import annotations

import json

import numpy as np

import pytest
import torch
import torch.nn.functional as F

from digit_recognizer.data.dataset import Split
from digit_recognizer.training.ensemble import train_ensemble
from digit_recognizer.errors import DigitsError
from digit_recognizer.inference.engine import logits, probabilities, tta_views
from digit_recognizer.models.modelfile import load_model
from digit_recognizer.inference.recognizer import Recognizer
from digit_recognizer.training.recipes import make_config

QUIET = {"progress": False, "log": lambda m: None}


@pytest.fixture(scope="module")
def small(mnist) -> Split:
    return Split(mnist.train.images[:2000], mnist.train.labels[:2000])


@pytest.fixture(scope="module")
def ensemble_run(small, tmp_path_factory):
    run = tmp_path_factory.mktemp("ens") / "run"
    train_ensemble(make_config("fast", epochs=1, batch_size=64), small, run, 2, **QUIET)
    return run


def test_members_are_different_seeds_and_load_as_one_model(ensemble_run):
    meta = json.loads((ensemble_run / "model.json").read_text())
    assert meta["members"] == ["member-0/model.json", "member-1/model.json"] and meta["tta"] is True
    seeds = [json.loads((ensemble_run / m).read_text())["training"]["seed"] for m in meta["members"]]
    assert seeds == [0, 1]
    loaded = load_model(ensemble_run)
    assert len(loaded.nets) == 2 and 0 < meta["min_confidence"] < 1 and 0 < meta["metrics"]["val_accuracy"] <= 1
    assert not torch.equal(loaded.nets[0].head[-1].weight, loaded.nets[1].head[-1].weight)
    assert meta["parameters"] == 2 * json.loads((ensemble_run / meta["members"][0]).read_text())["parameters"]


def test_probabilities_average_members_and_shifted_views(ensemble_run, mnist):
    loaded = load_model(ensemble_run)
    x = mnist.test.images[:32]
    expected = torch.stack([F.softmax(logits(net, v) / t, 1) for net, t in zip(loaded.nets, loaded.temperatures)
                            for v in tta_views(x, 1)]).mean(0)
    got = Recognizer(loaded, precision="fp32").probabilities(x)
    assert torch.allclose(got, expected, atol=1e-6)
    assert Recognizer(loaded).predict(x[0].numpy()).digit == int(expected[0].argmax())


def test_the_digit_score_is_the_members_and_views_mean_logsumexp_and_cascades_with_the_answer(ensemble_run, mnist):
    from dataclasses import replace

    loaded = load_model(ensemble_run)
    x = mnist.test.images[:64]
    calibrated = [logits(net, v) / t for net, t in zip(loaded.nets, loaded.temperatures) for v in tta_views(x, 1)]
    expected = torch.stack([torch.logsumexp(z, 1) for z in calibrated]).mean(0)  # (N,)
    probs, score = Recognizer(loaded, precision="fp32").scores(x)
    assert torch.allclose(score, expected, atol=1e-5) and score.shape == (64,)
    assert torch.allclose(probs, torch.stack([F.softmax(z, 1) for z in calibrated]).mean(0), atol=1e-6)
    first = logits(loaded.nets[0], x) / loaded.temperatures[0]  # (N, 10): the first member alone, one view
    cascade = float(F.softmax(first, 1).amax(1).median())
    unsure = F.softmax(first, 1).amax(1) < cascade
    _, got = Recognizer(replace(loaded, meta={**loaded.meta, "cascade": cascade}), precision="fp32").scores(x)
    assert torch.allclose(got[~unsure], torch.logsumexp(first, 1)[~unsure], atol=1e-5)
    assert torch.allclose(got[unsure], expected[unsure], atol=1e-5)


@pytest.mark.smoke
def test_resume_keeps_finished_members(small, ensemble_run, tmp_path):
    before = (ensemble_run / "member-0" / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(DigitsError, match="already holds a training run: --overwrite starts again there"):
        train_ensemble(make_config("fast", epochs=1, batch_size=64), small, ensemble_run, 2, **QUIET)
    train_ensemble(make_config("fast", epochs=1, batch_size=64), small, ensemble_run, 3, resume=True, **QUIET)
    assert (ensemble_run / "member-0" / "model.safetensors").stat().st_mtime_ns == before
    assert len(load_model(ensemble_run).nets) == 3
    with pytest.raises(DigitsError, match="at least 2"):
        train_ensemble(make_config("fast", epochs=1), small, tmp_path, 1, **QUIET)


def test_a_single_model_saved_with_tta_predicts_with_it(small, mnist, tmp_path):
    from digit_recognizer.training.loop import train

    cfg = make_config("fast", epochs=1, batch_size=64, tta=True)
    meta = json.loads(train(cfg, small, tmp_path / "run", **QUIET).model_json.read_text())
    assert meta["tta"] is True and 0 < meta["metrics"]["val_accuracy_tta"] <= 1
    rec = Recognizer.load(tmp_path / "run", precision="fp32")
    assert rec.tta
    x = mnist.test.images[:16]
    (net,), (t,) = rec.loaded.nets, rec.loaded.temperatures
    expected = torch.stack([F.softmax(logits(net, v) / t, 1) for v in tta_views(x, 1)]).mean(0)
    assert torch.allclose(rec.probabilities(x), expected, atol=1e-6)
    assert make_config("best").tta and not make_config("fast").tta


def test_a_cascade_asks_every_member_only_where_the_first_is_unsure(ensemble_run, mnist):
    from dataclasses import replace

    loaded = load_model(ensemble_run)
    x = mnist.test.images[:64]
    (first_net, *_), temps = loaded.nets, loaded.temperatures
    first = F.softmax(logits(first_net, x) / temps[0], 1)  # the first member alone, one view
    full = Recognizer(loaded, precision="fp32").probabilities(x)  # every member, every view
    cascade = float(first.amax(1).median())  # half the images each way
    unsure = first.amax(1) < cascade
    assert 0 < int(unsure.sum()) < len(x)
    rec = Recognizer(replace(loaded, meta={**loaded.meta, "cascade": cascade}), precision="fp32")
    got = rec.probabilities(x)
    assert torch.allclose(got[~unsure], first[~unsure], atol=1e-6)
    assert torch.allclose(got[unsure], full[unsure], atol=1e-6)
    assert not torch.allclose(got[~unsure], full[~unsure], atol=1e-6)  # the sure rows really skipped the rest
    # int8 too: the first member's quantized net alone where it is sure, every member's elsewhere
    rec8 = Recognizer(replace(loaded, meta={**loaded.meta, "cascade": cascade}), precision="int8")
    first8 = probabilities(loaded.nets[:1], x, temperatures=temps[:1], precision="int8",
                           int8_nets=rec8.int8_nets)
    full8 = probabilities(loaded.nets, x, temperatures=temps, precision="int8", tta=True, int8_nets=rec8.int8_nets)
    unsure8 = first8.amax(1) < cascade
    fresh = Recognizer(replace(loaded, meta={**loaded.meta, "cascade": 0.0001}), precision="int8")
    fresh.probabilities(x)  # every image sure: the other members are never quantized
    assert len(fresh._int8) == 1
    got8 = rec8.probabilities(x)
    assert 0 < int(unsure8.sum()) < len(x)
    assert torch.allclose(got8[~unsure8], first8[~unsure8], atol=1e-5)
    assert torch.allclose(got8[unsure8], full8[unsure8], atol=1e-5)


def test_refit_refusal_fits_no_score_threshold_for_a_net_that_never_learned_outliers(ensemble_run, small,
                                                                                    tmp_path):
    import importlib.util
    import shutil

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("refit_refusal", REPO / "scripts" / "refit_refusal.py")
    refit_refusal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refit_refusal)
    run = tmp_path / "run"
    shutil.copytree(ensemble_run, run)
    member = run / "member-0" / "model.json"
    stale = {**json.loads(member.read_text()), "min_score": 99.0}  # as if fitted once where it should not be
    member.write_text(json.dumps(stale))
    changed = refit_refusal.refit(member, small)  # the fast recipe: no outliers
    meta = json.loads(member.read_text())
    assert "min_score" not in meta and meta["min_confidence"] == 0.5 and changed["before"]["min_score"] == 99.0
    assert Recognizer.load(member).min_score is None


def test_one_network_cascades_from_its_plain_view_to_every_shifted_view(ensemble_run, mnist):
    from dataclasses import replace

    loaded = load_model(ensemble_run / "member-0")
    x = mnist.test.images[:64]
    plain = F.softmax(logits(loaded.nets[0], x) / loaded.temperatures[0], 1)  # one view
    views = Recognizer(replace(loaded, meta={**loaded.meta, "tta": True}), precision="fp32").probabilities(x)
    cascade = float(plain.amax(1).median())
    unsure = plain.amax(1) < cascade
    got = Recognizer(replace(loaded, meta={**loaded.meta, "tta": True, "cascade": cascade}),
                     precision="fp32").probabilities(x)
    assert 0 < int(unsure.sum()) < len(x)
    assert torch.allclose(got[~unsure], plain[~unsure], atol=1e-6)
    assert torch.allclose(got[unsure], views[unsure], atol=1e-6)
    assert not torch.allclose(got[~unsure], views[~unsure], atol=1e-6)


def test_a_cascade_is_an_ensembles_and_a_confidence(ensemble_run, small, tmp_path):
    import shutil

    from digit_recognizer.training.ensemble import write_ensemble
    from digit_recognizer.training.rundir import RunDir

    run = tmp_path / "run"
    shutil.copytree(ensemble_run, run)
    meta = json.loads((run / "model.json").read_text())
    write_ensemble(RunDir(run), meta["members"], small, meta["training"], tta=True, cascade=0.9)
    assert json.loads((run / "model.json").read_text())["cascade"] == 0.9
    assert Recognizer.load(run).cascade == 0.9
    for bad in (0, 1.5, "high", None):
        (run / "model.json").write_text(json.dumps({**meta, "cascade": bad}))
        with pytest.raises(DigitsError, match='"cascade" must be a number above 0 and at most 1'):
            load_model(run)
    member = run / meta["members"][0]
    alone = json.loads(member.read_text())
    member.write_text(json.dumps({**alone, "tta": False, "cascade": 0.9}))  # one view: nothing to cascade to
    with pytest.raises(DigitsError, match=r"in an ensemble's description or a model's with shifted views"):
        load_model(member)
    member.write_text(json.dumps({**alone, "tta": True, "cascade": 0.9}))
    assert load_model(member).meta["cascade"] == 0.9


def test_onnx_export_of_a_cascade_answers_as_the_recognizer(ensemble_run, mnist, tmp_path):
    import shutil

    import onnxruntime as ort

    from digit_recognizer.inference.export import export_onnx

    x = mnist.test.images[:500]
    loaded = load_model(ensemble_run)
    cascade = float(F.softmax(logits(loaded.nets[0], x) / loaded.temperatures[0], 1).amax(1).median())
    meta = json.loads((ensemble_run / "model.json").read_text())
    run = tmp_path / "run"
    shutil.copytree(ensemble_run, run)  # the members' files, beside a description with a cascade
    (run / "model.json").write_text(json.dumps({**meta, "cascade": cascade}))
    cascaded = load_model(run)
    want = Recognizer(cascaded, precision="fp32").probabilities(x).numpy()
    session = ort.InferenceSession(str(export_onnx(cascaded, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"])
    out = session.run(["logits"], {"pixels": x.unsqueeze(1).float().numpy()})[0]
    got = np.exp(out - out.max(1, keepdims=True))
    got /= got.sum(1, keepdims=True)
    assert np.abs(got - want).max() <= 1e-5


def test_the_best_recipe_is_how_the_shipped_model_was_trained():
    """`digits train --recipe best --ensemble 2 --seed 1 --cascade 0.95` reproduces the shipped model: every
    setting its model file and each member's record."""
    from digit_recognizer.config import to_dict
    from digit_recognizer.models.modelfile import default_model_path, read_json
    from digit_recognizer.training.recipes import RECIPES

    shipped = read_json(default_model_path())
    recipe = to_dict(RECIPES["best"])
    # Given on its command line (--seed, --cascade, --ensemble), or how its steps ran (eager or as a CUDA graph).
    per_run = {"seed", "cascade", "cuda_graph", "ensemble"}
    members = [read_json(default_model_path().with_name(m))["training"] for m in shipped["members"]]
    for recorded in [shipped["training"], *members]:
        assert {k: recorded[k] for k in recipe.keys() & recorded.keys() - per_run if recorded[k] != recipe[k]} == {}
        assert recorded["model"] == "deep"
    assert [m["seed"] for m in members] == [1, 2] and shipped["cascade"] == 0.95 and shipped["tta"]
