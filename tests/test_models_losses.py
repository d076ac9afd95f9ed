import math

import pytest
import torch

from vaelib.errors import InputError
from vaelib.losses import elbo_terms, kl_standard_normal, reconstruction
from vaelib.models import ConvVAE, MLPVAE, build_model, load_model, save_model


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("latent", [2, 16])
def test_shapes(arch, latent):
    m = build_model(arch, latent).eval()
    x = torch.rand(5, 1, 28, 28)
    logits, mu, logvar = m(x)
    assert logits.shape == (5, 1, 28, 28) and mu.shape == logvar.shape == (5, latent)
    assert m.reconstruct(x).shape == (5, 1, 28, 28)
    s = m.sample(3, generator=torch.Generator().manual_seed(0))
    assert s.shape == (3, 1, 28, 28) and 0 <= s.min() and s.max() <= 1
    assert build_model(**m.config()).config() == m.config()


def test_mlp_is_784_400_z():
    m = MLPVAE(2)
    assert [p.shape for p in m.enc.parameters()] == [(400, 784), (400,)]
    assert m.enc_mu.weight.shape == (2, 400)
    assert isinstance(ConvVAE(4).enc[1], torch.nn.BatchNorm2d)


def test_mlp_hidden_layers_mirror_and_round_trip(tmp_path):
    m = build_model("mlp", 3, hidden=[32, 16])
    widths = [p.shape for p in m.parameters() if p.dim() == 2]
    assert widths == [(32, 784), (16, 32), (3, 16), (3, 16), (16, 3), (32, 16), (784, 32)]
    save_model(m, tmp_path / "m.pth")
    loaded, _ = load_model(tmp_path / "m.pth")
    assert loaded.config() == {"arch": "mlp", "latent_dim": 3, "hidden": [32, 16]}
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded.reconstruct(x), m.eval().reconstruct(x))
    with pytest.raises(InputError, match="hidden"):
        build_model("mlp", 2, hidden=[])


def test_bad_model_names():
    with pytest.raises(InputError, match="architecture"):
        build_model("resnet", 2)
    with pytest.raises(InputError, match="latent_dim"):
        build_model("mlp", 0)


def test_losses_by_hand():
    x = torch.rand(2, 1, 28, 28)
    logits = torch.zeros(2, 1, 28, 28)  # p = 0.5 everywhere: BCE = 784 log 2 whatever x is
    assert torch.allclose(reconstruction(logits, x), torch.full((2,), 784 * math.log(2)))
    logits = torch.randn(2, 1, 28, 28)
    p = torch.sigmoid(logits)
    by_hand = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    assert torch.allclose(reconstruction(logits, x), by_hand, rtol=1e-5)
    assert torch.allclose(reconstruction(logits, x, "gaussian"), ((p - x) ** 2).flatten(1).sum(1))
    mu = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0]])
    # KL(N(μ,σ²)‖N(0,1)) = ½(σ² + μ² − 1 − log σ²) per dimension
    expected = torch.tensor([0.0, 0.5 * (4 + 1 - 1 - math.log(4)) + 0.5 * 4])
    assert torch.allclose(kl_standard_normal(mu, logvar), expected)
    t = elbo_terms(logits, x, mu, logvar, beta=0.5)
    assert torch.allclose(t["total"], t["recon"] + 0.5 * t["kl"])
    with pytest.raises(InputError, match="likelihood"):
        reconstruction(logits, x, "poisson")
