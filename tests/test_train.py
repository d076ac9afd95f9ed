import dataclasses
import random

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from vaelib import fid, store, train
from vaelib.errors import InputError
from vaelib.models import PatchDiscriminator, build_model, load_model, save_model
from vaelib.data import to_float
from vaelib.train import Callback, RunConfig, SnapshotEvery, fit, seed_everything, snapshot_index, train_or_load

from helpers import real_digits


class StopAfter(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, state):
        if state.epoch == self.epoch:
            raise KeyboardInterrupt


def _train(epochs, ckpt=None, callbacks=(), arch="conv", precision="float32"):
    x, _ = real_digits(192)
    seed_everything(0)
    model = build_model(arch, 2)
    hist = fit(model, x[:160], x[160:], epochs=epochs, batch_size=32, seed=0, device="cpu",
               checkpoint_path=ckpt, callbacks=callbacks, progress=False, precision=precision)
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


def _overfit(epochs, patience, ckpt=None, callbacks=()):
    """An MLP trained on 64 images of one digit and validated on 64 of another: validation −ELBO soon rises."""
    x, y = real_digits(400)
    seed_everything(0)
    model = build_model("mlp", 2)
    hist = fit(model, x[y == 1][:64], x[y == 0][:64], epochs=epochs, batch_size=16, lr=3e-3, seed=0, device="cpu",
               patience=patience, checkpoint_path=ckpt, callbacks=callbacks, progress=False)
    return model, hist, x[y == 0][:64]


def test_early_stopping_keeps_the_best_epoch_and_resumes_exactly(tmp_path):
    model, hist, val = _overfit(60, patience=3)
    totals = [r["val_total"] for r in hist]
    best = int(np.argmin(totals))
    assert len(hist) < 60 and len(hist) == best + 1 + 3  # stopped 3 epochs after the best one
    again = train.evaluate(model, val, seed=2)  # fit evaluates validation with seed + 2
    assert again["total"] == pytest.approx(totals[best], rel=1e-6)  # the best weights, not the last
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        _overfit(60, 3, ckpt, callbacks=[StopAfter(best + 2)])
    resumed, hist2, _ = _overfit(60, 3, ckpt)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(hist2) == strip(hist)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), resumed.state_dict().values()))
    with pytest.raises(ValueError, match="patience"):
        fit(build_model("mlp", 2), val, epochs=1, patience=2, progress=False)


def test_convergence_reports_the_tail_of_the_validation_curve():
    from types import SimpleNamespace

    vals = [300.0, 200.0, 150.0, 140.0, 135.0, 134.0, 133.5, 133.4, 133.3, 133.2]  # fall 166.8, last step -0.1
    hist = [{"epoch": i + 1, "val_total": v} for i, v in enumerate(vals)]
    run = SimpleNamespace(history=hist, config=RunConfig(epochs=10, patience=3),
                          metrics={"n_train": 1000, "steps": 80, "best_epoch": 10})
    c = train.convergence(run)
    assert (c["epoch_cap"], c["epochs_run"], c["best_epoch"], c["tail_epochs"]) == (10, 10, 10, 1)
    assert c["tail_change"] == pytest.approx(-0.1) and c["flat"] and not c["stopped_early"]
    still_falling = SimpleNamespace(**{**vars(run), "history": hist[:4]})
    c = train.convergence(still_falling)
    assert c["stopped_early"] and not c["flat"] and c["share_of_fall"] == pytest.approx(10 / 160)


def test_epoch_budget_raises_epochs_to_the_step_budget():
    cfg = RunConfig(epochs=20, batch_size=128, min_steps=5000)
    assert train.epoch_budget(cfg, 54_000) == 20  # 422 steps per epoch: the seed's epochs already give 8,440
    assert train.epoch_budget(cfg, 4_500) == 139  # 36 steps per epoch
    assert train.epoch_budget(RunConfig(epochs=20), 100) == 20


def test_same_seed_same_numbers():
    a, ha = _train(1, arch="mlp")
    b, hb = _train(1, arch="mlp")
    assert ha[0]["train_total"] == hb[0]["train_total"]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_bfloat16_training_is_deterministic_close_and_resolved_per_machine(tmp_path):
    """bfloat16 autocast: the same numbers twice, other numbers than float32 but close, float32 weights; "auto"
    is bfloat16 exactly on a CPU with AMX; a checkpoint of one precision does not resume the other."""
    (a, ha), (b, hb), (c, hc) = (_train(2, precision=p) for p in ("bfloat16", "bfloat16", "float32"))
    assert ha == [{**r, "seconds": h["seconds"]} for r, h in zip(hb, ha)]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert all(p.dtype == torch.float32 for p in a.parameters())
    assert ha[-1]["val_total"] != hc[-1]["val_total"] and ha[-1]["val_total"] == pytest.approx(hc[-1]["val_total"], rel=0.05)
    assert ha[-1]["val_total"] < ha[0]["val_total"] or ha[-1]["train_total"] < ha[0]["train_total"]
    assert train.resolve_precision("auto", "cpu") == ("bfloat16" if train.cpu_has_amx() else "float32")
    assert train.resolve_precision("float32", "cpu") == "float32"
    with pytest.raises(InputError, match="precision 'fp8'"):
        train.resolve_precision("fp8")
    _train(1, ckpt=tmp_path / "ck.pt", precision="bfloat16")
    with pytest.raises(InputError, match="precision"):
        _train(2, ckpt=tmp_path / "ck.pt")


def test_train_or_load_resolves_auto_precision_into_the_key(monkeypatch):
    cfg = RunConfig(epochs=1, n_train=200, arch="conv", precision="auto")
    run = train_or_load(cfg, device="cpu", progress=False)
    concrete = dataclasses.replace(cfg, precision=train.resolve_precision("auto", "cpu"))
    assert run.config == concrete and train_or_load(concrete, device="cpu").key == run.key


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

from vaelib.train import RunConfig, snapshot_index, train_or_load


@pytest.fixture(scope="module")
def run2():
    cfg = RunConfig(dataset="mnist", arch="conv", latent_dim=2, epochs=2, batch_size=64, n_train=160, n_test=100,
                    snapshot_every=1, snapshot_n=40, eval_n=100)
    return train_or_load(cfg, device="cpu", progress=False)


def test_snapshot_index_is_stratified_and_round_robin(run2):
    test = run2.data.test
    idx = snapshot_index(test, 40)
    labels = test.labels[idx].tolist()
    assert len(set(idx)) == 40 and sorted(np.bincount(labels).tolist()) == [4] * 10
    assert labels[:10] == sorted(set(labels))  # the first ten span every class
    assert run2.snapshots["index"].tolist() == idx


def test_snapshots_cover_every_step(run2):
    s = run2.snapshots
    n_steps = 2 * -(-len(run2.data.train) // 64)
    assert s["step"].tolist() == list(range(n_steps + 1))
    assert s["mu"].shape == (n_steps + 1, 40, 2) and s["recon"].shape == (n_steps + 1, 8, 1, 28, 28)
    x = to_float(run2.data.test.images[s["index"]])
    assert torch.allclose(run2.model.latents(x), s["mu"][-1], atol=1e-5)  # the last snapshot is the final model


def test_per_epoch_evaluation_matches_final_metrics_and_skimage(run2):
    last = run2.history[-1]
    assert {"train_eval_mse", "train_eval_ssim", "train_eval_psnr", "test_total", "test_ssim"} <= set(last)
    for k in ("mse", "psnr", "ssim"):  # eval_n >= n_test: the same test images, reconstructed from μ
        assert last[f"test_{k}"] == pytest.approx(run2.metrics[f"test_{k}"], rel=1e-6)
    x = to_float(run2.data.test.images)
    rec = run2.model.reconstruct(x)
    ref = np.mean([structural_similarity(a[0], b[0], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                         data_range=1.0) for a, b in zip(x.numpy(), rec.numpy().astype(np.float64))])
    assert last["test_ssim"] == pytest.approx(ref, abs=1e-4)
    assert last["test_mse"] == pytest.approx(float(((rec - x) ** 2).mean()), rel=1e-5)


# ---------------------------------------------------------------- perceptual and adversarial terms, resuming

strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]


def _tiny_net():
    """A small random feature network standing in for VGG16 (no download in tests)."""
    torch.manual_seed(5)
    convs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 4, 3, stride=2, padding=1), torch.nn.ReLU())
    return fid.FeatureMaps(convs, (1, 3), "tiny random")


def _gan(epochs, ckpt=None, callbacks=(), arch="conv", model_kw=None, labels=False, **kwargs):
    """``fit`` on 96 digits (3 steps per epoch), validated on 32."""
    x, y = real_digits(128)
    seed_everything(0)
    model = build_model(arch, 2, **(model_kw or {}))
    labels = dict(train_y=y[:96], val_y=y[96:]) if labels else {}
    hist = fit(model, x[:96], x[96:], epochs=epochs, batch_size=32, seed=0, device="cpu", checkpoint_path=ckpt,
               callbacks=callbacks, progress=False, **labels, **kwargs)
    return model, hist


def _same(a, b) -> bool:
    """Equal nested checkpoint content: tensors bit for bit."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(p, q) for p, q in zip(a, b))
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_adversarial_terms_wait_for_the_warmup_then_both_networks_learn(tmp_path):
    ckpt = tmp_path / "gan.pt"
    plain, _ = _gan(1)
    gan, first = _gan(1, ckpt, adversarial=0.5, adv_warmup=3)  # 3 steps per epoch: all of epoch 1 is warm-up
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), gan.state_dict().values()))
    seed_everything(0)
    build_model("conv", 2)
    fresh = PatchDiscriminator()  # what fit built: the next draws of the global generator
    assert _same(torch.load(ckpt, weights_only=True)["discriminator"], fresh.state_dict())  # not trained yet
    assert first[0]["train_adv_weight"] == 0 and first[0]["train_discriminator"] > 0 and "train_adversarial" in first[0]
    gan, hist = _gan(2, ckpt, adversarial=0.5, adv_warmup=3)  # resumes at epoch 2, after the warm-up
    assert not _same(torch.load(ckpt, weights_only=True)["discriminator"], fresh.state_dict())
    assert hist[1]["train_adv_weight"] > 0 and strip(hist[:1]) == strip(first)
    plain, _ = _gan(2)
    assert not torch.equal(plain.dec[-1].weight, gan.dec[-1].weight)


@pytest.mark.parametrize("case", [
    dict(arch="unet", model_kw={"channels": [8, 16], "num_classes": 10}, labels=True),  # conditional, hinge, adaptive
    dict(arch="conv-tanh", likelihood="mse", adv_loss="least-squares", adv_adaptive=False)])  # seed 002's, fixed
def test_resume_with_discriminator_and_perceptual_is_bit_identical(tmp_path, case):
    kw = dict(case, perceptual=2.0, perceptual_net=_tiny_net(), adversarial=0.1, adv_warmup=4)  # starts in epoch 2
    ref, ref_hist = _gan(3, tmp_path / "ref.pt", **kw)
    with pytest.raises(KeyboardInterrupt):
        _gan(3, tmp_path / "ckpt.pt", callbacks=[StopAfter(2)], **kw)
    resumed, hist = _gan(3, tmp_path / "ckpt.pt", **kw)
    assert strip(hist) == strip(ref_hist) and {"train_perceptual", "train_discriminator"} <= set(hist[0])
    a, b = (torch.load(tmp_path / f, weights_only=True) for f in ("ref.pt", "ckpt.pt"))
    for part in ("model", "optimizer", "discriminator", "disc_optimizer"):
        assert _same(a[part], b[part]), part
    assert _same(ref.state_dict(), resumed.state_dict())
    assert hist[0]["train_adv_weight"] == 0 < hist[1]["train_adv_weight"] and np.isfinite(hist[2]["val_total"])


def test_mismatched_likelihoods_are_refused():
    x = torch.rand(4, 1, 28, 28)
    for arch, likelihood in (("conv-tanh", "bernoulli"), ("conv", "mse")):
        with pytest.raises(InputError, match=f"likelihood '{likelihood}'"):
            fit(build_model(arch, 2), x, epochs=1, likelihood=likelihood, progress=False)
    with pytest.raises(InputError, match="perceptual_net"):
        fit(build_model("conv", 2), x, epochs=1, perceptual=1.0, progress=False)


def test_resume_from_continues_a_training_and_refuses_other_models_or_settings(tmp_path):
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    _train(1, one)
    ref, ref_hist = _train(2, two)
    x, _ = real_digits(192)

    def resume(model, path=one, epochs=2, **kw):
        seed_everything(0)
        return fit(model, x[:160], x[160:], epochs=epochs, batch_size=32, seed=0, device="cpu", progress=False,
                   resume_from=path, **kw)

    model = build_model("conv", 2)
    assert strip(resume(model)) == strip(ref_hist) and _same(model.state_dict(), ref.state_dict())
    (tmp_path / "junk.pt").write_bytes(b"junk")
    save_model(ref, tmp_path / "model.pth")
    for model, kw, message in [
        (build_model("mlp", 2), {}, "one.pt: written for another model or settings (arch 'conv' there, 'mlp' here"),
        (build_model("conv", 3), {}, "latent_dim 2 there, 3 here"),
        (build_model("conv", 2), {"beta": 0.5}, "beta 1.0 there, 0.5 here"),
        (build_model("conv", 2), {"adversarial": 0.1}, "adversarial 0.0 there, 0.1 here"),
        (build_model("conv", 2), {"path": two, "epochs": 1}, "two.pt: 2 epochs trained already"),
        (build_model("conv", 2), {"path": tmp_path / "junk.pt"}, "junk.pt: unreadable"),
        (build_model("conv", 2), {"path": tmp_path / "model.pth"}, "model.pth: not a training checkpoint"),
        (build_model("conv", 2), {"path": tmp_path / "none.pt"}, "none.pt: file not found"),
    ]:
        with pytest.raises(InputError) as e:
            resume(model, **kw)
        assert message in str(e.value)


def test_train_or_load_resumed_run_continues_the_original(monkeypatch):
    monkeypatch.setattr(fid, "perceptual_network", lambda dataset, device: _tiny_net())
    short = RunConfig(arch="conv", epochs=1, n_train=200, batch_size=64, snapshot_n=10, eval_n=20, perceptual=1.0,
                      adversarial=0.1, adv_warmup=2)
    long = dataclasses.replace(short, epochs=2)
    straight = train_or_load(long, device="cpu", progress=False)
    resumed = train_or_load(long, device="cpu", progress=False, resume_from=short)
    assert resumed.key != straight.key and not resumed.cached and straight.metrics["perceptual_net"] == "tiny random"
    assert strip(resumed.history) == strip(straight.history) and len(resumed.history) == 2
    assert {"train_perceptual", "train_adversarial", "train_discriminator", "test_ssim"} <= set(resumed.history[0])
    assert _same(resumed.model.state_dict(), straight.model.state_dict())
    assert torch.equal(resumed.snapshots["mu"], straight.snapshots["mu"]) and len(straight.snapshots["step"]) == 3
    assert train_or_load(long, device="cpu", resume_from=short).cached
    assert not list((store.root() / ".partial").glob("*/*.pt"))
    with pytest.raises(InputError, match="beta 0.5 there, 1.0 here"):
        train_or_load(long, device="cpu", resume_from=dataclasses.replace(short, beta=0.5))
