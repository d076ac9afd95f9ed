import json

import pytest
import torch

from vaelib import runs
from vaelib.errors import InputError
from vaelib.models import build_model
from vaelib.runs import RunConfig, load_model, save_model, train_or_load
from vaelib.seeding import seed_everything
from vaelib.train import Callback, SnapshotEvery, fit

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


@pytest.mark.parametrize("arch", ["conv", "mlp"])  # autograd and hand-derived gradients
def test_resume_is_bit_identical(tmp_path, arch):
    ref, ref_hist = _train(4, arch=arch)
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        _train(4, ckpt, callbacks=[StopAfter(2)], arch=arch)
    resumed, hist = _train(4, ckpt, arch=arch)
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(hist) == strip(ref_hist)


def test_same_seed_same_numbers():
    a, ha = _train(1, arch="mlp")
    b, hb = _train(1, arch="mlp")
    assert ha[0]["train_total"] == hb[0]["train_total"]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_run_cache_hit_and_miss(monkeypatch):
    calls = []
    real_fit = runs.fit
    monkeypatch.setattr(runs, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    cfg = RunConfig(name="cache-test", epochs=1, n_train=200, snapshot_n=20)
    first = train_or_load(cfg, device="cpu", progress=False)
    again = train_or_load(cfg, device="cpu")
    assert len(calls) == 1 and not first.cached and again.cached and first.path == again.path
    assert first.path.name.startswith("cache-test-")
    assert json.loads((first.path / "config.json").read_text())["n_train"] == 200
    assert again.metrics == first.metrics and {"test_total", "test_ssim", "test_psnr"} <= set(first.metrics)
    assert again.snapshots["mu"].shape == (2, 20, 2) and again.snapshots["recon"].dtype == torch.uint8
    other = train_or_load(RunConfig(name="cache-test", epochs=1, n_train=200, seed=1), device="cpu", progress=False)
    assert len(calls) == 2 and other.path != first.path


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
    with pytest.raises(InputError, match="unknown"):
        RunConfig.from_dict({"name": "a", "colour": 1})
