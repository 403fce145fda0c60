"""Smoke tests: a short run of each example trains (its loss goes down) and finishes."""
import importlib.util
import os
import sys

import numpy as np
import pytest

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
