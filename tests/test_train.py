import random

import numpy as np
import pytest
import torch

from vaelib import store, train
from vaelib.errors import InputError
from vaelib.models import build_model, load_model, save_model
from vaelib.train import Callback, RunConfig, SnapshotEvery, fit, seed_everything, train_or_load

from helpers import real_digits


class StopAfter(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, state):
        if state.epoch == self.epoch:
            raise KeyboardInterrupt


def _train(epochs, ckpt=None, callbacks=(), arch="conv"):
    x, _ = real_digits(192)
    seed_everything(0)
    model = build_model(arch, 2)
    hist = fit(model, x[:160], x[160:], epochs=epochs, batch_size=32, seed=0, device="cpu",
               checkpoint_path=ckpt, callbacks=callbacks, progress=False)
    return model, hist


def test_seed_everything_seeds_python_numpy_torch():
    seed_everything(3)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(3)
    assert a == (random.random(), np.random.rand(), torch.rand(1).item())


def test_history_and_snapshots():
    snap = SnapshotEvery(2, lambda m: m.encode(torch.zeros(1, 1, 28, 28))[0].clone())
    model, hist = _train(2, callbacks=[snap], arch="mlp")
    assert [h["epoch"] for h in hist] == [1, 2]
    assert {"train_total", "train_recon", "train_kl", "val_total", "val_kl"} <= set(hist[0])
    assert hist[1]["train_total"] < hist[0]["train_total"]
    assert abs(hist[0]["train_total"] - hist[0]["train_recon"] - hist[0]["train_kl"]) < 1e-6 * hist[0]["train_total"]
    # 5 batches per epoch, a snapshot every 2 steps plus one at the start
    assert [s["step"] for s in snap.snapshots] == [0, 2, 4, 6, 8, 10]
    assert not model.training


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_resume_is_bit_identical_snapshots_included(tmp_path, arch):
    snap = SnapshotEvery(0, lambda m: m.encode(torch.ones(1, 1, 28, 28))[0].clone())
    ref, ref_hist = _train(4, arch=arch, callbacks=[snap])
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        _train(4, ckpt, callbacks=[SnapshotEvery(0, snap.fn), StopAfter(2)], arch=arch)
    resumed_snap = SnapshotEvery(0, snap.fn)
    resumed, hist = _train(4, ckpt, arch=arch, callbacks=[resumed_snap, Callback()])
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(hist) == strip(ref_hist)
    assert [s["epoch"] for s in resumed_snap.snapshots] == [0, 1, 2, 3, 4]
    assert all(torch.equal(a["value"], b["value"]) for a, b in zip(snap.snapshots, resumed_snap.snapshots))


def test_same_seed_same_numbers():
    a, ha = _train(1, arch="mlp")
    b, hb = _train(1, arch="mlp")
    assert ha[0]["train_total"] == hb[0]["train_total"]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_train_or_load_trains_once_per_config(monkeypatch):
    calls = []
    real_fit = train.fit
    monkeypatch.setattr(train, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    cfg = RunConfig(epochs=1, n_train=200, snapshot_n=20, eval_n=30)
    first = train_or_load(cfg, device="cpu", progress=False)
    again = train_or_load(cfg, device="cpu")
    assert len(calls) == 1 and not first.cached and again.cached and first.key == again.key == again.store_key
    assert again.metrics == first.metrics and {"test_total", "test_ssim", "test_psnr", "n_train"} <= set(first.metrics)
    assert again.history == first.history and {"test_ssim", "train_eval_mse"} <= set(first.history[0])
    assert again.snapshots["mu"].shape == (2, 20, 2) and again.snapshots["recon"].dtype == torch.uint8
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()))
    other = train_or_load(RunConfig(epochs=1, n_train=200, seed=1), device="cpu", progress=False)
    assert len(calls) == 2 and other.key != first.key
    assert not list((store.root() / ".partial").glob("*/checkpoint.pt"))


def test_run_labels():
    assert RunConfig(dataset="mnist", arch="conv", latent_dim=16).label == "mnist conv z=16"
    cfg = RunConfig(dataset="fashion-mnist", classes=[0, 1, 7], arch="conv", beta=0.5, seed=2)
    assert cfg.label == "fashion-mnist [0,1,7] conv z=2 β=0.5 seed 2" and cfg.classes == (0, 1, 7)


def test_model_file_round_trip_and_errors(tmp_path):
    m = build_model("mlp", 3)
    save_model(m, tmp_path / "m.pth")
    loaded, _ = load_model(tmp_path / "m.pth")
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), loaded.state_dict().values()))
    (tmp_path / "junk.pth").write_bytes(b"not a model")
    with pytest.raises(InputError, match="junk.pth"):
        load_model(tmp_path / "junk.pth")
    torch.save({"model_config": {"arch": "mlp", "latent_dim": 5}, "state_dict": m.state_dict()}, tmp_path / "x.pth")
    with pytest.raises(InputError, match="do not match"):
        load_model(tmp_path / "x.pth")
