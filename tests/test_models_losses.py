import math

import pytest
import torch

from vaelib.errors import InputError
from vaelib.losses import (adaptive_weight, discriminator_loss, elbo_terms, generator_loss, kl_standard_normal,
                           perceptual_distance, reconstruction)
from vaelib.models import ConvVAE, MLPVAE, PatchDiscriminator, build_model, load_model, save_model


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


# ---------------------------------------------------------------- U-Net VAE, tanh/MSE conv VAE, discriminator

@pytest.mark.parametrize("latent", [2, 4, 16])
def test_unet_shapes_config_and_model_file(tmp_path, latent):
    m = build_model("unet", latent).eval()
    x = torch.rand(3, 1, 28, 28)
    out, mu, logvar = m(x)
    assert out.shape == (3, 1, 28, 28) and mu.shape == logvar.shape == (3, latent)
    assert m.config() == {"arch": "unet", "latent_dim": latent, "channels": [32, 64], "num_classes": 0}
    assert isinstance(m.enc_mid.attn.attn, torch.nn.MultiheadAttention) and m.enc_mid.cross is None
    assert m.last_layer() is m.dec[-1].weight and m.last_layer().shape == (1, 32, 3, 3)
    save_model(m, tmp_path / "u.pth")
    loaded, _ = load_model(tmp_path / "u.pth")
    assert torch.equal(loaded.reconstruct(x), m.reconstruct(x))
    torch.save({"model_config": {**m.config(), "channels": [32]}, "state_dict": m.state_dict()}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="bad.pth"):
        load_model(tmp_path / "bad.pth")


def test_conditional_unet_cross_attends_to_the_class():
    m = build_model("unet", 2, channels=[8, 16], num_classes=10).eval()
    assert build_model(**m.config()).config() == m.config() and m.dec_mid.cross is not None
    x, z = torch.rand(2, 1, 28, 28), torch.zeros(2, 2)
    a, b = m.generate(z, y=torch.tensor([3, 3])), m.generate(z, y=torch.tensor([3, 7]))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])  # same z, other class: other image
    assert m.sample(4, y=torch.arange(4)).shape == (4, 1, 28, 28)
    assert m.latents(x, y=torch.tensor([1, 2])).shape == (2, 2)
    assert m.reconstruct(x, torch.tensor([1, 2])).shape == x.shape
    with pytest.raises(InputError, match="y: missing"):
        m.reconstruct(x)
    with pytest.raises(InputError, match="y: given"):
        build_model("unet", 2, channels=[8, 16])(x, y=torch.tensor([1, 2]))
    with pytest.raises(InputError, match="channels"):
        build_model("unet", 2, channels=[8, 16, 32])


def test_tanh_conv_vae_maps_to_pixels_and_mse_by_hand():
    m = build_model("conv-tanh", 2).eval()
    assert m.output == "tanh" and build_model(**m.config()).arch == "conv-tanh"
    out = torch.randn(2, 1, 28, 28)
    assert torch.allclose(m.to_pixels(out), (torch.tanh(out) + 1) / 2)
    x = torch.rand(2, 1, 28, 28)
    assert 0 <= m.reconstruct(x).min() and m.reconstruct(x).max() <= 1
    assert torch.allclose(reconstruction(out, x, "mse"), ((torch.tanh(out) - (2 * x - 1)) ** 2).flatten(1).sum(1))
    assert torch.allclose(reconstruction(torch.full_like(x, 20.0), torch.ones_like(x), "mse"), torch.zeros(2))


def test_patch_discriminator_gives_a_7x7_map_of_logits():
    d = PatchDiscriminator()
    assert d(torch.rand(5, 1, 28, 28)).shape == (5, 1, 7, 7)
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)) for m in d.modules())


def test_adversarial_losses_by_hand():
    real, fake = torch.tensor([[[[2.0, 0.5]]]]), torch.tensor([[[[-3.0, 0.0]]]])
    assert generator_loss(fake).item() == pytest.approx(1.5)  # −mean D(fake)
    assert generator_loss(fake, "least-squares").item() == pytest.approx((16 + 1) / 2)
    assert discriminator_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert discriminator_loss(real, fake, "least-squares").item() == pytest.approx((1 + 0.25) / 2 + (9 + 0) / 2)
    with pytest.raises(InputError, match="wasserstein"):
        generator_loss(fake, "wasserstein")


def test_adaptive_weight_is_the_gradient_norm_ratio_clamped():
    w = torch.ones(3, requires_grad=True)
    a, b = torch.tensor([3.0, 4.0, 0.0]), torch.tensor([0.0, 0.0, 0.5])
    weight = adaptive_weight((w * a).sum(), (w * b).sum(), w)
    assert weight.item() == pytest.approx(5 / (0.5 + 1e-4)) and not weight.requires_grad
    assert adaptive_weight((w * a).sum(), (w * 0).sum(), w).item() == 1e4  # clamped


def test_perceptual_distance_by_hand():
    net = lambda x: [x[:, :, :2, :2].repeat(1, 2, 1, 1), x]  # two maps: 2 equal channels of a corner, 1 channel
    a, b = torch.rand(3, 1, 28, 28) + 0.1, torch.rand(3, 1, 28, 28) + 0.1
    # unit length over channels: the first map is 1/√2 everywhere for both; the 1-channel map is ±1 (here +1)
    assert torch.allclose(perceptual_distance(net, a, b), torch.zeros(3), atol=1e-6)
    b[0, 0, 14:] = -b[0, 0, 14:]  # half the positions change sign in the 1-channel map: (1 − (−1))² on half
    assert torch.allclose(perceptual_distance(net, a, b), torch.tensor([2.0, 0, 0]), atol=1e-6)
    b[0, 0, 0, 0] = -b[0, 0, 0, 0]  # one more position: in the corner map 2 channels × (2/√2)² over 4 positions
    assert torch.allclose(perceptual_distance(net, a, b), torch.tensor([2 + 4 / 784 + 1, 0, 0]), atol=1e-6)
