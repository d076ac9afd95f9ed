"""vaelib.plots: figures have the expected panels/images, files round-trip, GIFs loop."""

import matplotlib

matplotlib.use("Agg")

import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy.stats import norm  # noqa: E402

from vaelib import plots  # noqa: E402


def _imgs(n, channel=True):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 28, 28, generator=g)
    return x if channel else x[:, 0].numpy()


def _n_images(fig):
    return sum(len(ax.images) for ax in fig.axes)


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def test_image_grid_tensor_and_ndarray_with_captions():
    fig = plots.image_grid(_imgs(10), nrow=4, title="grid")
    assert isinstance(fig, Figure) and len(fig.axes) == 1 and _n_images(fig) == 1
    mosaic = fig.axes[0].images[0].get_array()
    assert mosaic.shape[1] > mosaic.shape[0]  # 4 across, 3 down (landscape)
    caps = [f"c{i}" for i in range(10)]
    fig = plots.image_grid(_imgs(10, channel=False), nrow=5, captions=caps)
    assert set(caps) <= set(_texts(fig))
    with pytest.raises(ValueError, match="shape"):
        plots.image_grid(np.zeros((2, 3, 28, 28)), nrow=2)


def test_image_grid_draws_into_given_axes():
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    assert plots.image_grid(_imgs(4), nrow=2, ax=ax2) is fig
    assert _n_images(fig) == 1 and len(ax2.images) == 1


def test_recon_rows_wraps_into_row_pairs():
    x, r = _imgs(20), _imgs(20).flip(0)
    caps = [f"SSIM {i / 20:.2f}" for i in range(20)]
    fig = plots.recon_rows(x, r, captions=caps, title="recon")
    assert len(fig.axes) == 1 and _n_images(fig) == 1
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["original", "reconstruction"] * 2
    assert set(caps) <= set(_texts(fig))
    with pytest.raises(ValueError):
        plots.recon_rows(x, r[:5])


def test_loss_curves_one_panel_per_quantity():
    hist = [
        dict(epoch=e, train_total=10 - e, val_total=11 - e, train_recon=8 - e, val_recon=9 - e,
             train_kl=2.0, val_kl=2.0, val_ssim=0.5 + e / 10)
        for e in range(1, 6)
    ]
    fig = plots.loss_curves(hist)
    assert len(fig.axes) == 4
    lines = {ax.get_title(): [ln.get_label() for ln in ax.get_lines()] for ax in fig.axes}
    assert lines["KL (nats/image)"] == ["train", "validation"]
    assert lines["SSIM"] == ["validation"]
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_xdata(), [1, 2, 3, 4, 5])
    assert len(plots.loss_curves(hist, quantities=("kl",)).axes) == 1
    with pytest.raises(ValueError, match="none of the keys"):
        plots.loss_curves(hist, quantities=("nope",))


def test_latent_scatter_legend_and_stable_colours():
    z = torch.randn(60, 2, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([3, 7] * 30)
    names = [f"class{k}" for k in range(10)]
    fig = plots.latent_scatter(z, labels, names, title="latent")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class3", "class7"]
    tab10 = matplotlib.colormaps["tab10"].colors
    np.testing.assert_allclose(ax.collections[0].get_facecolor()[0][:3], tab10[3], atol=1e-6)
    with pytest.raises(ValueError):
        plots.latent_scatter(torch.randn(5, 3), torch.zeros(5), names)


def test_manifold_uses_gaussian_quantile_grid():
    calls = []

    def fake_decode(z):
        calls.append(z.clone())
        # tile brightness encodes z[0] so the mosaic layout can be checked
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


def test_save_fig_atomic_png_with_author(tmp_path):
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([0, 1], [0, 1])
    out = plots.save_fig(fig, tmp_path / "a" / "b" / "fig.png", author="atharv.bhatt", dpi=100)
    assert out == tmp_path / "a" / "b" / "fig.png"
    assert "atharv.bhatt" in _texts(fig)
    assert iio.imread(out).shape[:2] == (200, 300)
    assert [p.name for p in out.parent.iterdir()] == ["fig.png"]  # no temporary left behind


def test_fig_to_array_and_gif_round_trip(tmp_path):
    frames = []
    for i in range(3):
        fig = Figure(figsize=(2, 1.5), dpi=50)
        fig.add_subplot().plot([0, 1], [0, i])
        frames.append(plots.fig_to_array(fig))
    assert frames[0].shape == (75, 100, 3) and frames[0].dtype == np.uint8
    out = plots.write_gif(frames, tmp_path / "g" / "anim.gif", fps=4)
    back = iio.imread(out, index=None)
    assert back.shape[:3] == (3, 75, 100)
    meta = iio.immeta(out)
    assert meta["loop"] == 0 and meta["duration"] == 250
    assert [p.name for p in out.parent.iterdir()] == ["anim.gif"]


def test_write_gif_rejects_bad_frames(tmp_path):
    a = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        plots.write_gif([a, np.zeros((10, 12, 3), np.uint8)], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="uint8"):
        plots.write_gif([a.astype(float)], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="empty"):
        plots.write_gif([], tmp_path / "x.gif")
    assert not list(tmp_path.iterdir())


def test_report_figures_display_as_png_in_any_backend():
    fig = plots.image_grid(np.zeros((4, 28, 28)), nrow=2)
    assert isinstance(fig, plots.ReportFigure)
    png = fig._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
