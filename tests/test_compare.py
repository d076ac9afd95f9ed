"""vaelib.compare: multi-run curves, sample quality, frozen-μ draws, μ-vs-sampled reconstructions."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from scipy.spatial.distance import pdist  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402
from sklearn.metrics import silhouette_score  # noqa: E402

from vaelib import compare  # noqa: E402
from vaelib.models import build_model  # noqa: E402

from helpers import real_digits  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("conv", 4).eval()


def test_compare_curves_one_line_per_run_and_split():
    h = lambda a: [{"epoch": e, "train_mse": a / e, "test_mse": a / e + 0.1, "train_total": a * e} for e in (1, 2, 3)]
    fig = compare.compare_curves({"a": h(1.0), "b": h(2.0)}, ("mse", "total", "ssim"),
                                 {"train_": "train", "test_": "test"}, title="t")
    assert len(fig.axes) == 2  # ssim absent everywhere: no panel
    mse_ax, total_ax = fig.axes
    assert len(mse_ax.lines) == 4 and len(total_ax.lines) == 2
    np.testing.assert_allclose(mse_ax.lines[1].get_ydata(), [1.1, 0.6, 1 / 3 + 0.1])
    with pytest.raises(ValueError, match="no key"):
        compare.compare_curves({"a": h(1.0)}, ("kl",), {"val_": "validation"})
    df = compare.history_frame({"a": h(1.0)})
    assert len(df) == 9 and set(df["key"]) == {"train_mse", "test_mse", "train_total"}


def test_silhouette_matches_scikit_learn():
    g = np.random.default_rng(0)
    z = np.concatenate([g.normal(0, 1, (50, 2)), g.normal(4, 1, (50, 2))])
    y = np.repeat([0, 1], 50)
    assert compare.silhouette(torch.from_numpy(z), torch.from_numpy(y)) == pytest.approx(silhouette_score(z, y))


def test_frozen_mu_draws_are_reproducible_and_independent(model):
    conds = {"N(0, I)": 1.0, "σ = 1": 1.0, "σ = 0": 0.0}
    draws = compare.diversity_draws(model, conds, n=16, draws=3, seed=0)
    assert len(draws) == 9 and list(draws.columns[:3]) == ["condition", "σ", "draw"]
    d = draws.set_index(["condition", "draw"])["diversity"]
    assert d[("σ = 0", 0)] == pytest.approx(0.0, abs=1e-6)  # z = 0 for every sample: one image
    assert d[("N(0, I)", 0)] != d[("σ = 1", 0)]  # same σ, different draws
    grids = compare.condition_samples(model, conds, 16, seed=0)
    ref = pdist(grids["N(0, I)"].flatten(1).double().numpy()).mean()
    assert d[("N(0, I)", 0)] == pytest.approx(ref)
    again = compare.diversity_draws(model, conds, n=16, draws=3, seed=0)
    assert again.equals(draws)
    q = compare.sample_quality(model, 16, seed=0)
    assert q["diversity"] > 0 and q["sharpness"] > 0
    fig = compare.draws_plot(draws)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(conds)


def test_reconstruction_table_against_references(model):
    x, _ = real_digits(24)
    table = compare.reconstruction_table(model, x, seed=0, batch_size=10).set_index("decoding")
    with torch.no_grad():
        mu, logvar = model.encode(x)
        logits = model.decode(mu)
    rec = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)).mean()
    row = table.loc["decoded from μ"]
    assert row["reconstruction (nats)"] == pytest.approx(float(bce), rel=1e-5)
    assert row["KL (nats)"] == pytest.approx(float(kl), rel=1e-5)
    assert table.loc["decoded from sampled z", "KL (nats)"] == pytest.approx(float(kl), rel=1e-5)
    assert row["MSE"] == pytest.approx(float(((rec - x) ** 2).mean()), rel=1e-5)
    ref = np.mean([structural_similarity(a[0], b[0], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                         data_range=1.0) for a, b in zip(x.numpy(), rec.numpy().astype(np.float64))])
    assert row["SSIM"] == pytest.approx(ref, abs=1e-4)
    assert table.loc["decoded from sampled z", "MSE"] != row["MSE"]
    d = compare.decode_mu_and_sampled(model, x[:4], seed=1)
    assert torch.allclose(d["from_mu"], rec[:4], atol=1e-6) and not torch.allclose(d["from_z"], d["from_mu"])


def test_panels(model):
    imgs = {"a": torch.rand(16, 1, 28, 28), "b": torch.rand(16, 1, 28, 28)}
    fig = compare.image_panels(imgs, nrow=8, title="t")
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    z = {"β = 1": (torch.randn(30, 2), torch.arange(30) % 3), "β = 2": (torch.randn(30, 2), torch.arange(30) % 3)}
    fig = compare.latent_panels(z, [str(i) for i in range(10)])
    assert len(fig.axes) == 2 and fig.axes[0].get_legend() is None and fig.axes[1].get_legend() is not None
