"""vaelib.gifs (frames from run snapshots) and the run-cache features behind them: snapshot order,
per-epoch train/test evaluation, snapshots that survive an interrupted and resumed training."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from vaelib import gifs, runs  # noqa: E402
from vaelib.data import to_float  # noqa: E402
from vaelib.runs import RunConfig, snapshot_index, train_or_load  # noqa: E402
from vaelib.train import Callback  # noqa: E402

TINY = dict(dataset="mnist", arch="conv", epochs=2, batch_size=64, n_train=160, n_test=100)


@pytest.fixture(scope="module")
def run2():
    """A 2-D conv VAE with a snapshot every optimiser step and per-epoch evaluation."""
    return train_or_load(RunConfig(name="gif-z2", latent_dim=2, snapshot_every=1, snapshot_n=40, eval_n=100,
                                   **TINY), device="cpu", progress=False)


@pytest.fixture(scope="module")
def run3():
    """A 3-D conv VAE with one snapshot per epoch."""
    return train_or_load(RunConfig(name="gif-z3", latent_dim=3, snapshot_n=50, **TINY), device="cpu", progress=False)


def _fake_snapshots(t=4, n=30, z=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"index": torch.arange(n), "step": torch.arange(t) * 5, "epoch": torch.arange(t),
            "mu": torch.randn(t, n, z, generator=g) * torch.linspace(0.1, 1, t).view(t, 1, 1),
            "recon": torch.randint(0, 256, (t, 8, 1, 28, 28), generator=g, dtype=torch.uint8)}


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
    # the last snapshot is the final model
    x = to_float(run2.data.test.images[s["index"]])
    assert torch.allclose(run2.model.latents(x), s["mu"][-1], atol=1e-5)


def test_per_epoch_evaluation_matches_final_metrics_and_skimage(run2):
    last = run2.history[-1]
    assert {"train_eval_mse", "train_eval_ssim", "train_eval_psnr", "test_total", "test_ssim"} <= set(last)
    # eval_n >= n_test: the last epoch's test row is the final test evaluation (same images, same seed)
    for k in ("total", "recon", "kl", "mse", "psnr", "ssim"):
        assert last[f"test_{k}"] == pytest.approx(run2.metrics[f"test_{k}"], rel=1e-6)
    x = to_float(run2.data.test.images)
    rec = run2.model.reconstruct(x)
    ref = np.mean([structural_similarity(a[0], b[0], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                         data_range=1.0) for a, b in zip(x.numpy(), rec.numpy().astype(np.float64))])
    assert last["test_ssim"] == pytest.approx(ref, abs=1e-4)
    assert last["test_mse"] == pytest.approx(float(((rec - x) ** 2).mean()), rel=1e-5)


class _StopAfter(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, state):
        if state.epoch == self.epoch:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_with_all_snapshots(monkeypatch, tmp_path):
    monkeypatch.setenv("VAELIB_RUNS", str(tmp_path / "a"))
    cfg = RunConfig(name="resume", latent_dim=2, snapshot_every=2, snapshot_n=20, eval_n=50, **{**TINY, "epochs": 3})
    ref = train_or_load(cfg, device="cpu", progress=False)
    monkeypatch.setenv("VAELIB_RUNS", str(tmp_path / "b"))
    real_fit = runs.fit
    monkeypatch.setattr(runs, "fit",
                        lambda *a, callbacks=(), **k: real_fit(*a, callbacks=[*callbacks, _StopAfter(2)], **k))
    with pytest.raises(KeyboardInterrupt):
        train_or_load(cfg, device="cpu", progress=False)
    monkeypatch.setattr(runs, "fit", real_fit)
    resumed = train_or_load(cfg, device="cpu", progress=False)
    assert not resumed.cached
    for k in ("step", "epoch", "mu", "recon"):
        assert torch.equal(resumed.snapshots[k], ref.snapshots[k]), k
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(resumed.history) == strip(ref.history)


def test_latent_coords_pca_is_fitted_once_on_the_final_latents():
    s = _fake_snapshots(z=5)
    coords, xl, yl, info = gifs.latent_coords(s["mu"])
    assert coords.shape == (4, 30, 2) and info["projection"] == "pca" and "PC1" in xl
    final = s["mu"][-1].double().numpy()
    pca = PCA(2).fit(final)
    for t in range(4):  # every frame through the same projection
        np.testing.assert_allclose(coords[t], pca.transform(s["mu"][t].double().numpy()), atol=1e-5)
    # principal axes = top right-singular vectors of the centred final latents (up to sign)
    _, _, vt = np.linalg.svd(final - final.mean(0), full_matrices=False)
    np.testing.assert_allclose(np.abs(pca.components_), np.abs(vt[:2]), atol=1e-6)
    two, *_ = gifs.latent_coords(_fake_snapshots(z=2)["mu"])
    np.testing.assert_allclose(two, _fake_snapshots(z=2)["mu"].numpy(), atol=1e-7)


def test_frame_indices_thin_evenly_and_keep_the_ends():
    assert gifs.frame_indices(5) == [0, 1, 2, 3, 4]
    idx = gifs.frame_indices(101, 11)
    assert idx[0] == 0 and idx[-1] == 100 and len(idx) == 11 and np.all(np.diff(idx) == 10)
    with pytest.raises(ValueError):
        gifs.frame_indices(0)


def test_frames_share_one_shape_and_write_a_looping_gif(tmp_path):
    s = _fake_snapshots()
    originals = torch.rand(8, 1, 28, 28)
    for frames in (gifs.reconstruction_frames(s, originals, "r"), gifs.latent_frames(s, np.arange(30) % 3, None, "l"),
                   gifs.beta_frames(s, np.arange(30) % 3, originals, None, "b")):
        assert len(frames) == 4 and len({f.shape for f in frames}) == 1
        assert frames[0].dtype == np.uint8 and frames[0].shape[2] == 3
        assert not np.array_equal(frames[0], frames[-1])
    path = gifs.write(frames, tmp_path / "b.gif", fps=10, hold_s=1.0)
    info = gifs.gif_info(path)
    with Image.open(path) as im:
        assert im.info["loop"] == 0 and im.n_frames == 4  # the hold merged into the last frame
        im.seek(0)
        assert im.info["duration"] == 100
    assert info["frames"] == 4 and info["seconds"] == pytest.approx(0.3 + 1.1) and info["loop"] == 0
    assert info["bytes"] == path.stat().st_size
    with pytest.raises(ValueError, match="labels"):
        gifs.latent_frames(s, np.arange(29), None)
    with pytest.raises(ValueError, match="snapshot_n"):
        gifs.reconstruction_frames(None, originals)


def test_gifs_from_runs(run2, run3, tmp_path):
    t2 = len(run2.snapshots["step"])
    assert gifs.gif_info(gifs.beta_gif(run2, tmp_path / "beta.gif"))["frames"] == t2
    assert gifs.gif_info(gifs.beta_gif(run2, tmp_path / "beta6.gif", max_frames=3))["frames"] == 3
    assert gifs.gif_info(gifs.reconstruction_gif(run3, tmp_path / "rec.gif"))["frames"] == 3  # start + 2 epochs
    assert gifs.gif_info(gifs.latent_gif(run3, tmp_path / "lat.gif"))["frames"] == 3
    loop = gifs.gif_info(gifs.traversal_gif(run2, tmp_path / "t2.gif", steps=6))
    assert loop["frames"] == 6 and loop["loop"] == 0
    sweep = gifs.gif_info(gifs.traversal_gif(run3, tmp_path / "t3.gif", steps=8, n_images=2))
    assert sweep["frames"] == 2 * 5 - 2  # -span → span → back, no repeated frame at the turn
    fig = gifs.preview([tmp_path / "rec.gif", tmp_path / "lat.gif"])
    assert len(fig.axes) == 4


def test_traversal_frames_decode_one_dimension_at_a_time(run3):
    mu = torch.zeros(1, 3)
    frames = gifs.traversal_frames(run3.model, mu, steps=3, span=2.0)
    assert len(frames) == 4
    with pytest.raises(ValueError, match="expected"):
        gifs.traversal_frames(run3.model, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="latent_dim"):
        gifs.manifold_loop_frames(run3.model, np.zeros((5, 3)), np.zeros(5))


def test_rendered_gifs_are_reused_from_the_run_folder(tmp_path):
    from types import SimpleNamespace

    from vaelib import gifs

    run = SimpleNamespace(path=tmp_path / "run")
    built = []

    def build(target):
        built.append(target)
        return gifs.write([np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)], target, fps=2)

    for out in ("a/x.gif", "b/x.gif"):
        gifs._cached(run, tmp_path / out, {"kind": "test"}, build)
    assert len(built) == 1 and (tmp_path / "b/x.gif").read_bytes() == built[0].read_bytes()
    gifs._cached(run, tmp_path / "c.gif", {"kind": "test", "fps": 3}, build)
    assert len(built) == 2
