"""Smoke tests: a short run of each example trains (its loss goes down) and finishes."""
import importlib.util
import os
import sys

import numpy as np
import pytest

import kernelgrad as kg

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(name):
    sys.path.insert(0, EXAMPLES)
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def went_down(losses, k=10):
    return np.mean(losses[-k:]) < 0.8 * np.mean(losses[:k])


def test_quickstart(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["quickstart.py", "--epochs", "60"])
    assert load("quickstart").main() > 0.85


def test_quickstart_elastic_net_penalty_raises_the_loss(monkeypatch, capsys):
    """--l1/--l2 add the elastic-net penalty to the printed loss (epoch 1: same weights, so the
    difference is the penalty itself)."""
    losses = {}
    for extra in ([], ["--l1", "0.01", "--l2", "0.01"]):
        monkeypatch.setattr(sys, "argv", ["quickstart.py", "--epochs", "1"] + extra)
        load("quickstart").main()
        first = capsys.readouterr().out.splitlines()[0]
        losses[bool(extra)] = float(first.split("loss")[1])
    assert losses[True] > losses[False] + 0.01


needs_cuda = pytest.mark.skipif(not kg.cuda.is_available(), reason="no CUDA device or emulator in this build")


@needs_cuda
def test_quickstart_on_cuda(monkeypatch, capsys):
    """A few epochs with --device cuda compute what they compute on the CPU (the weights are drawn on
    the CPU and moved): the same printed loss and the same test accuracy."""
    runs = {}
    for dev in ("cpu", "cuda"):
        monkeypatch.setattr(sys, "argv", ["quickstart.py", "--epochs", "3", "--device", dev])
        accuracy = load("quickstart").main()
        runs[dev] = (accuracy, capsys.readouterr().out.splitlines())
    (acc_cpu, out_cpu), (acc_cuda, out_cuda) = runs["cpu"], runs["cuda"]
    assert out_cuda[0] == out_cpu[0] and out_cuda[0].startswith("epoch    1  loss")
    assert abs(acc_cuda - acc_cpu) <= 0.002 and acc_cuda > 0.5  # float32 rounding may flip a point or two


@needs_cuda
def test_train_cnn_digits_on_cuda(tmp_path, monkeypatch):
    """LeNet with --device cuda on a tiny slice of the digits (2 epochs of 2 batches; every emulated
    kernel launch is costly) follows the CPU run of the same slice step by step."""
    pytest.importorskip("sklearn", reason="the digits data set ships with scikit-learn (test extra)")
    results = {}
    for dev in ("cpu", "cuda"):
        mod = load("train_cnn_digits")

        def tiny_split(seed, split=mod.load_digits_split):
            x_train, y_train, x_test, y_test = split(seed)
            return x_train[:64], y_train[:64], x_test[:32], y_test[:32]

        monkeypatch.setattr(mod, "load_digits_split", tiny_split)
        results[dev] = mod.main(["--model", "lenet", "--epochs", "2", "--batch", "32", "--device", dev, "--quiet",
                                 "--out", str(tmp_path)])
    cpu, cuda = results["cpu"], results["cuda"]
    assert len(cuda["losses"]) == 4 and np.all(np.isfinite(cuda["losses"]))
    np.testing.assert_allclose(cuda["losses"], cpu["losses"], rtol=1e-4)  # float32 sums in another order
    assert abs(cuda["accuracy"] - cpu["accuracy"]) <= 1 / 32


def test_two_spirals(tmp_path):
    out = load("two_spirals").main(["--steps", "300", "--activations", "linear,tanh", "--quiet", "--out", str(tmp_path)])
    assert went_down(out["tanh"]["losses"])
    # the point of the exercise: tanh separates the spirals much better than a linear network
    assert out["tanh"]["accuracy"] > out["linear"]["accuracy"] + 0.1


def test_word2vec(tmp_path):
    out = load("word2vec").main(["--steps", "150", "--dim", "16", "--batch", "256", "--quiet", "--out", str(tmp_path)])
    assert went_down(out["losses"])
    assert all(len(v) == 5 for v in out["neighbours"].values())


def test_autoencoder_digits(tmp_path):
    pytest.importorskip("sklearn", reason="the digits data set ships with scikit-learn (test extra)")
    out = load("autoencoder_digits").main(["--epochs", "4", "--quiet", "--out", str(tmp_path)])
    assert went_down(out["losses"])
    assert out["test_mse"] < out["baseline_mse"]


@pytest.mark.parametrize("model", ["lenet", "resnet"])
def test_train_cnn_digits(tmp_path, model):
    pytest.importorskip("sklearn", reason="the digits data set ships with scikit-learn (test extra)")
    out = load("train_cnn_digits").main(["--model", model, "--epochs", "2", "--quiet", "--out", str(tmp_path)])
    assert went_down(out["losses"])
    assert out["accuracy"] > 0.5


def test_char_transformer(tmp_path):
    out = load("char_transformer").main(["--steps", "40", "--d-model", "32", "--layers", "1", "--heads", "2",
                                         "--context", "32", "--batch", "8", "--sample", "20", "--quiet",
                                         "--out", str(tmp_path)])
    assert went_down(out["losses"])
    assert out["val_loss"] < np.log(out["vocab"])  # better than a uniform guess over the vocabulary
    assert out["sample"].startswith("The ") and len(out["sample"]) == 24
