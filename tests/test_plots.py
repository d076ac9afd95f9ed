"""vaelib.plots: every figure has the expected panels and rejects bad shapes; GIF frames, bytes and files."""

import importlib

import matplotlib

matplotlib.use("Agg")

import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402
from PIL import Image  # noqa: E402
from scipy.stats import norm  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

from vaelib import plots, store  # noqa: E402
from vaelib.gmm import GMMClassifier  # noqa: E402
from vaelib.models import build_model  # noqa: E402
from vaelib.train import RunConfig, train_or_load  # noqa: E402


def _imgs(n, channel=True):
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    return x if channel else x[:, 0].numpy()


def _n_images(fig):
    return sum(len(ax.images) for ax in fig.axes)


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


# ---------------------------------------------------------------- figures


def test_new_figure_applies_the_style_per_call_not_at_import():
    matplotlib.rcdefaults()
    importlib.reload(plots)
    assert matplotlib.rcParams["image.cmap"] != "gray"
    fig = plots.new_figure()
    assert isinstance(fig, plots.ReportFigure) and matplotlib.rcParams["image.cmap"] == "gray"
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_grid_tensor_and_ndarray_with_captions():
    fig = plots.image_grid(_imgs(10), nrow=4, title="grid")
    assert isinstance(fig, Figure) and len(fig.axes) == 1 and _n_images(fig) == 1
    mosaic = fig.axes[0].images[0].get_array()
    assert mosaic.shape[1] > mosaic.shape[0]  # 4 across, 3 down (landscape)
    caps = [f"c{i}" for i in range(10)]
    assert set(caps) <= set(_texts(plots.image_grid(_imgs(10, channel=False), nrow=5, captions=caps)))
    with pytest.raises(ValueError, match="shape"):
        plots.image_grid(np.zeros((2, 3, 28, 28)), nrow=2)
    with pytest.raises(ValueError, match="empty"):
        plots.image_grid(np.zeros((0, 28, 28)))


def test_image_grid_draws_into_given_axes():
    fig = Figure()
    _, ax2 = fig.subplots(1, 2)
    assert plots.image_grid(_imgs(4), nrow=2, ax=ax2, row_labels=["a", "b"]) is fig
    assert _n_images(fig) == 1 and len(ax2.images) == 1
    assert [t.get_text() for t in ax2.get_yticklabels()] == ["a", "b"]


def test_recon_rows_wraps_into_row_pairs():
    x, r = _imgs(20), _imgs(20).flip(0)
    caps = [f"SSIM {i / 20:.2f}" for i in range(20)]
    fig = plots.recon_rows(x, r, captions=caps, title="recon")
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and _n_images(fig) == 1
    assert [t.get_text() for t in ax.get_yticklabels()] == ["original", "reconstruction"] * 2
    assert set(caps) <= set(_texts(fig))
    mosaic = ax.images[0].get_array()
    np.testing.assert_allclose(mosaic[2:30, 2:30], x[0, 0])  # top-left tile: the first original
    with pytest.raises(ValueError, match="expected equal"):
        plots.recon_rows(x, r[:5])


def _history(a=1.0):
    return [dict(epoch=e, train_total=10 * a - e, val_total=11 * a - e, train_kl=2.0, val_kl=2.0,
                 test_mse=a / e + 0.1, val_ssim=0.5 + e / 10) for e in range(1, 6)]


def test_curves_one_history_one_panel_per_quantity():
    fig = plots.curves(_history(), title="t")
    lines = {ax.get_title(): [ln.get_label() for ln in ax.get_lines()] for ax in fig.axes}
    assert list(lines) == ["−ELBO (nats/image)", "KL (nats/image)", "SSIM (from μ)"]  # test_mse: not a default split
    assert lines["KL (nats/image)"] == ["train", "validation"] and lines["SSIM (from μ)"] == ["validation"]
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_xdata(), [1, 2, 3, 4, 5])
    assert len(plots.curves(_history(), ("kl",)).axes) == 1
    with pytest.raises(ValueError, match="no key"):
        plots.curves(_history(), quantities=("nope",))


def test_curves_several_runs_one_colour_per_run_one_style_per_split():
    fig = plots.curves({"a": _history(1.0), "b": _history(2.0)}, ("mse", "total", "psnr"),
                       {"train_": "train", "test_": "test"})
    mse_ax, total_ax = fig.axes[:2]  # psnr absent everywhere: no panel
    assert len(fig.axes) == 2 and len(mse_ax.lines) == 2 and len(total_ax.lines) == 2
    assert [ln.get_label() for ln in total_ax.lines] == ["a · train", "b · train"]
    assert mse_ax.lines[0].get_color() != mse_ax.lines[1].get_color()
    assert mse_ax.lines[0].get_linestyle() == "--"  # test: the second split's style
    np.testing.assert_allclose(mse_ax.lines[1].get_ydata(), [2 / e + 0.1 for e in range(1, 6)])


def test_latent_scatter_legend_stable_colours_and_limits():
    z = torch.randn(60, 2, generator=torch.Generator().manual_seed(0))
    names = [f"class{k}" for k in range(10)]
    fig = plots.latent_scatter(z, torch.tensor([3, 7] * 30), names, title="latent", lims=((-5, 5), (-1, 1)))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class3", "class7"]
    np.testing.assert_allclose(ax.collections[0].get_facecolor()[0][:3], matplotlib.colormaps["tab10"].colors[3])
    assert ax.get_xlim() == (-5, 5) and ax.get_ylim() == (-1, 1)
    with pytest.raises(ValueError, match="expected z"):
        plots.latent_scatter(torch.randn(5, 3), torch.zeros(5), names)


def test_manifold_uses_gaussian_quantile_grid():
    calls = []

    def fake_decode(z):
        calls.append(z.clone())
        return torch.sigmoid(z[:, :1, None, None]).expand(-1, 1, 28, 28)

    n = 5
    fig = plots.manifold(fake_decode, n=n, latent_dim=3)
    assert len(calls) == 1 and calls[0].shape == (n * n, 3) and calls[0].dtype == torch.float32
    q = norm.ppf(np.linspace(0.05, 0.95, n))
    z = calls[0].numpy().reshape(n, n, 3)
    np.testing.assert_allclose(z[0, :, 0], q, rtol=1e-6)  # columns: z[0] increases left to right
    np.testing.assert_allclose(z[:, 0, 1], q[::-1], rtol=1e-6)  # rows: z[1] increases upwards
    assert (z[..., 2] == 0).all()
    ax = fig.axes[0]
    assert _n_images(fig) == 1 and ax.images[0].get_array().shape == (n * 28, n * 28)
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{v:.2f}" for v in q]
    assert ax.get_xlabel() == "z[0]" and ax.get_ylabel() == "z[1]"
    with pytest.raises(ValueError, match="decode_fn returned"):
        plots.manifold(lambda z: torch.zeros(len(z), 1, 14, 14), n=3)


def test_panels_of_images_and_latents():
    fig = plots.sampler_grids({"": {"a": _imgs(16), "b": _imgs(16)}}, nrow=8, title="t")
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"] and _n_images(fig) == 2
    z = {f"β = {b}": (torch.randn(30, 2), torch.arange(30) % 3) for b in (1, 2)}
    fig = plots.latent_panels(z, [str(i) for i in range(10)])
    assert len(fig.axes) == 2 and fig.axes[0].get_legend() is None and fig.axes[1].get_legend() is not None
    with pytest.raises(ValueError, match="empty"):
        plots.latent_panels({})


def test_sampler_grids_titles_scores_and_missing_panels():
    samples = {"m1": {"prior": _imgs(8), "gmm": _imgs(8)}, "m2": {"prior": _imgs(4)}}
    fig = plots.sampler_grids(samples, scores={("m1", "gmm"): "\nFID 12"}, nrow=4)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["m1\nprior", "m1\ngmm\nFID 12", "m2\nprior", ""] and _n_images(fig) == 3
    assert not fig.axes[3].axison
    with pytest.raises(ValueError, match="empty"):
        plots.sampler_grids({})


def test_draws_plot_one_tick_per_condition():
    draws = pd.DataFrame({"condition": ["N(0, I)"] * 3 + ["σ = 0.5"] * 3, "diversity": [9.0, 9.5, 10, 5, 5.5, 6]})
    ax = plots.draws_plot(draws, title="d").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["N(0, I)", "σ = 0.5"] and ax.get_title() == "d"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [9.5, 5.5])  # the means, then one s.d. bar each
    np.testing.assert_allclose(np.nanmax(ax.lines[1].get_ydata()), 10.0)


@pytest.mark.parametrize("n_sigma", [1.0, 2.0])
def test_ellipse_boundary_is_at_n_sigma_mahalanobis(n_sigma):
    cov = np.array([[2.0, 1.2], [1.2, 1.0]])
    w, h, angle = plots.ellipse_params(cov, n_sigma)
    assert w >= h
    patch = Ellipse((0, 0), w, h, angle=angle)
    pts = patch.get_patch_transform().transform(patch.get_path().vertices[:-1:3])  # on-curve Bézier vertices
    d2 = np.einsum("ni,ij,nj->n", pts, np.linalg.inv(cov), pts)
    np.testing.assert_allclose(np.sqrt(d2), n_sigma, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        plots.ellipse_params(np.eye(3))


def test_ellipses_confusion_and_label_efficiency_figures():
    rng = np.random.default_rng(0)
    y = np.repeat([1, 4, 8], 50)
    z = np.array([{1: (0, 3), 4: (-2.5, -1), 8: (2.5, -1)}[c] for c in y]) + rng.normal(scale=0.5, size=(150, 2))
    clf = GMMClassifier(GaussianMixture(3, random_state=0).fit(z), np.array([1, 4, 8]))
    ax = plots.ellipses_figure(z, y, [str(i) for i in range(10)], clf).axes[0]
    assert sum(isinstance(p, Ellipse) for p in ax.patches) == 6  # 1σ and 2σ for 3 components
    with pytest.raises(ValueError, match="2-D"):
        plots.ellipses_figure(np.c_[z, z], y, None, GMMClassifier(GaussianMixture(3).fit(np.c_[z, z]), clf.classes))
    fig = plots.confusion_figure(np.array([[9, 1, 0], [2, 7, 1], [0, 3, 7]]), ["1", "4", "8"], title="c")
    assert {t.get_text() for t in fig.axes[0].texts} >= {"9", "7", "3"}
    draws = pd.DataFrame([{"method": m, "k": k, "per_class": n, "draw": d, "f1_macro": f + 0.01 * d}
                          for m, f in (("gmm", 0.8), ("logreg", 0.6)) for k, n in (("1", 1), ("5", 5), ("all", 12))
                          for d in range(3)])
    summary = draws.groupby(["method", "k"], sort=False).agg(per_class=("per_class", "first"), f1_macro_mean=(
        "f1_macro", "mean"), f1_macro_std=("f1_macro", "std")).reset_index()
    ax = plots.label_efficiency_figure(summary, draws=draws).axes[0]
    assert len(ax.get_legend().get_texts()) == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "5", "all\n(≈12)"]
    assert sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets")) >= len(draws)


def test_fid_bar_chart_one_panel_per_extractor_baselines_hatched():
    rows = [{"model": m, "kind": kind, "data": data, "sampler": s, "extractor": e, "n": 50, "fid": f}
            for data in ("mnist", "fashion") for e in ("Inception", "domain classifier")
            for m, kind, s, f in (("real test images", "baseline", "—", 1.0), ("z=2", "model", "prior", 80.0),
                                  ("z=2", "model", "GMM", float("nan")))]
    fig = plots.fid_bar_chart(pd.DataFrame(rows), title="FID")
    assert [ax.get_title() for ax in fig.axes] == ["Inception features (N=50)", "domain classifier features (N=50)"]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[:3] == ["mnist · real test images", "mnist · z=2 · prior", "mnist · z=2 · GMM"]
    assert [b.get_hatch() for b in fig.axes[0].patches][:2] == ["//", ""]


def test_save_fig_atomic_png_with_author(tmp_path):
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([0, 1], [0, 1])
    out = plots.save_fig(fig, tmp_path / "a" / "b" / "fig.png", author="atharv.bhatt", dpi=100)
    assert out == tmp_path / "a" / "b" / "fig.png" and "atharv.bhatt" in _texts(fig)
    assert iio.imread(out).shape[:2] == (200, 300)
    assert [p.name for p in out.parent.iterdir()] == ["fig.png"]  # no temporary left behind


# ---------------------------------------------------------------- GIF frames, bytes and files


def _snapshots(t=4, n=30, z=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"index": torch.arange(n), "step": torch.arange(t) * 5, "epoch": torch.arange(t),
            "mu": torch.randn(t, n, z, generator=g) * torch.linspace(0.1, 1, t).view(t, 1, 1),
            "recon": torch.randint(0, 256, (t, 8, 1, 28, 28), generator=g, dtype=torch.uint8)}


def test_latent_coords_pca_is_fitted_once_on_the_final_latents():
    s = _snapshots(z=5)
    coords, (xl, _) = plots.latent_coords(s["mu"])
    assert coords.shape == (4, 30, 2) and xl.startswith("PC1")
    pca = PCA(2).fit(s["mu"][-1].double().numpy())
    for t in range(4):  # every frame through the same projection
        np.testing.assert_allclose(coords[t], pca.transform(s["mu"][t].double().numpy()), atol=1e-5)
    two, labels = plots.latent_coords(_snapshots(z=2)["mu"])
    np.testing.assert_allclose(two, _snapshots(z=2)["mu"].numpy(), atol=1e-7)
    assert labels == ("z[0]", "z[1]")
    with pytest.raises(ValueError, match=r"\(T, n, z\)"):
        plots.latent_coords(np.zeros((3, 4)))


def test_snapshot_frames_share_one_shape_and_change():
    s, originals, labels = _snapshots(), torch.rand(8, 1, 28, 28), np.arange(30) % 3
    for frames in (plots.snapshot_frames(s, originals=originals, title="r"), plots.snapshot_frames(s, labels),
                   plots.snapshot_frames(s, labels, originals, title="b")):
        assert len(frames) == 4 and len({f.shape for f in frames}) == 1
        assert frames[0].dtype == np.uint8 and frames[0].shape[2] == 3
        assert not np.array_equal(frames[0], frames[-1])
    with pytest.raises(ValueError, match="labels"):
        plots.snapshot_frames(s, np.arange(29))
    with pytest.raises(ValueError, match="expected equal"):
        plots.snapshot_frames(s, originals=originals[:7])
    with pytest.raises(ValueError, match="snapshot_n"):
        plots.snapshot_frames(None, labels)


def test_gif_bytes_loop_hold_and_save(tmp_path):
    frames = [np.full((10, 12, 3), 40 * i, np.uint8) for i in range(4)]
    data = plots.gif_bytes(frames, fps=10, hold_s=1.0)
    back = iio.imread(data, index=None, extension=".gif")
    assert back.shape[:3] == (4, 10, 12)  # the hold merged into the last frame
    path = plots.save_bytes(data, tmp_path / "g" / "a.gif")
    assert path.read_bytes() == plots.web_gif(data) and [p.name for p in path.parent.iterdir()] == ["a.gif"]
    with Image.open(path) as im:
        assert im.info["loop"] == 0 and im.n_frames == 4 and im.info["duration"] == 100
    info = plots.gif_info(path)
    assert info["frames"] == 4 and info["seconds"] == pytest.approx(0.3 + 1.1) and info["loop"] == 0
    assert info["bytes"] == path.stat().st_size and (info["width"], info["height"]) == (12, 10)
    assert len(plots.preview([path, path], where=(0.0, 0.5, 1.0), labels=["x", "y"]).axes) == 6


def test_gif_bytes_rejects_bad_frames():
    a = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        plots.gif_bytes([a, np.zeros((10, 12, 3), np.uint8)])
    with pytest.raises(ValueError, match="uint8"):
        plots.gif_bytes([a.astype(float)])
    with pytest.raises(ValueError, match="at least one"):
        plots.gif_bytes([])


@pytest.fixture(scope="module")
def model3():
    torch.manual_seed(0)
    return build_model("conv", 3).eval()


@pytest.fixture(scope="module")
def run2():
    """A tiny trained 2-D conv VAE with a snapshot every 4 optimiser steps."""
    cfg = RunConfig(dataset="mnist", arch="conv", latent_dim=2, epochs=1, batch_size=64, n_train=160, n_test=60,
                    snapshot_every=1, snapshot_n=30)
    return train_or_load(cfg, device="cpu", progress=False)


def test_gifs_from_a_run_through_the_store(run2, model3, tmp_path):
    t = len(run2.snapshots["step"])
    for fn in (plots.reconstruction_gif, plots.latent_gif, plots.beta_gif):
        data = store.cached(fn, run2, fps=5, title="z = 2")
        assert iio.imread(data, index=None, extension=".gif").shape[0] == t
        assert store.cached(fn, run2, fps=5, title="z = 2") == data  # from the store
        tagged = iio.imread(store.cached(fn, run2, fps=5, title="z = 2", author="A. Tester"), index=None, extension=".gif")
        plain = iio.imread(data, index=None, extension=".gif")
        h, w = plain.shape[1:3]  # the tag is in the bottom-right corner of every frame
        assert not np.array_equal(tagged[:, -h // 10:, -w // 3:], plain[:, -h // 10:, -w // 3:])
        assert np.abs(tagged[:, : h // 2].astype(int) - plain[:, : h // 2]).mean() < 2  # GIF palettes may shift a little
    loop = plots.gif_info(plots.save_bytes(plots.traversal_gif(run2, steps=6), tmp_path / "t2.gif"))
    assert loop["frames"] == 6 and loop["loop"] == 0
    run3 = type(run2)(**{**vars(run2), "model": model3, "key": "fake"})
    sweep = iio.imread(plots.traversal_gif(run3, steps=8, n_images=2), index=None, extension=".gif")
    assert sweep.shape[0] == 2 * 5 - 2  # a = -3, -1.5, 0, 1.5, 3, 1.5, 0, -1.5: no repeated frame at the turns
    assert np.array_equal(sweep[3], sweep[5]) and not np.array_equal(sweep[0], sweep[4])
    with pytest.raises(ValueError, match="snapshot_n"):
        plots.latent_gif(type(run2)(**{**vars(run2), "snapshots": None}))
