"""The hand-derived MLP VAE gradients against autograd, the lean Adam step against opt.step,
and denormal flushing in torch's worker threads."""
import subprocess
import sys

import pytest
import torch

from vaelib.losses import elbo_terms
from vaelib.mlp_gradients import elbo_gradients
from vaelib.models import MLPVAE, build_model
from vaelib.runs import RunConfig, cache_key
from vaelib.train import adam_stepper, fit, gradient_method, make_adam

from helpers import real_digits


@pytest.mark.parametrize("latent_dim,beta", [(2, 1.0), (5, 0.3)])
def test_gradients_and_terms_match_autograd(latent_dim, beta):
    x, _ = real_digits(48)
    x = x.double()
    torch.manual_seed(0)
    model = MLPVAE(latent_dim).double()
    eps = torch.randn(len(x), latent_dim, dtype=torch.double)
    mu, logvar = model.encode(x)
    ref = elbo_terms(model.decode(mu + torch.exp(0.5 * logvar) * eps), x, mu, logvar, beta)
    ref["total"].mean().backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.full_like(p, 123.0)  # stale values must be overwritten, not added to
    got = elbo_gradients(model, x, eps, beta)
    for k in ("total", "recon", "kl"):
        torch.testing.assert_close(got[k], ref[k].detach(), rtol=1e-12, atol=1e-10)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[n], rtol=1e-10, atol=1e-12, msg=n)


def test_fit_uses_them_and_trains_like_autograd(monkeypatch):
    """One epoch through ``fit`` (hand-derived gradients) vs the same epoch with autograd forced:
    same batches, same noise, float32 round-off apart."""
    x, _ = real_digits(256)
    histories, models = [], []
    for method in ("mlp_gradients", "autograd"):
        monkeypatch.setattr("vaelib.train.gradient_method", lambda arch, lik, m=method: m)
        torch.manual_seed(0)
        models.append(MLPVAE(2))
        histories.append(fit(models[-1], x[:224], x[224:], epochs=2, batch_size=32, device="cpu", progress=False))
    for a, b in zip(*histories):
        for k in ("train_total", "train_recon", "train_kl", "val_total"):
            assert a[k] == pytest.approx(b[k], rel=1e-4), k
    for p, q in zip(*(m.parameters() for m in models)):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


def test_gradient_method_and_cache_key():
    assert gradient_method("mlp", "bernoulli") == "mlp_gradients"
    assert gradient_method("mlp", "gaussian") == gradient_method("conv", "bernoulli") == "autograd"
    data = type("D", (), {})()
    data.train = data.test = type("S", (), {"provenance": {"sha256": "x", "source": "t"}})()
    bern, gauss = RunConfig(name="a", arch="mlp"), RunConfig(name="a", arch="mlp", likelihood="gaussian")
    assert cache_key(bern, data) != cache_key(gauss, data)


def test_adam_stepper_matches_optimizer_step():
    torch.manual_seed(0)
    a = build_model("conv", 3)
    b = build_model("conv", 3)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = make_adam(a, 1e-3, torch.device("cpu")), make_adam(b, 1e-3, torch.device("cpu"))
    step_b = adam_stepper(opt_b)
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        grads = [torch.randn(p.shape, generator=g) for p in a.parameters()]
        for m, opt, step in ((a, opt_a, opt_a.step), (b, opt_b, step_b)):
            for p, gr in zip(m.parameters(), grads):
                p.grad = gr.clone()
            step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert str(opt_a.state_dict()) == str(opt_b.state_dict())


def test_denormals_are_flushed_in_worker_threads():
    code = ("import vaelib.data, torch\n"
            "assert torch.get_num_threads() >= 1\n"
            "x = torch.full((1 << 22,), 1e-39)\n"  # denormal; big enough to be split across threads
            "print(int(torch.count_nonzero(x * 3.0)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"
