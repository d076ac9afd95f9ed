"""One epoch of the MLP VAE on Fashion-MNIST's 60,000 training images, two ways, in one run:

1. ``vaelib.train.fit``: the whole tensor on the device, one permutation per epoch and a gather per
   batch, autograd and PyTorch's fused Adam;
2. the way pytorch/examples' VAE feeds data: a per-item ``Dataset`` (uint8 → float tensor per image)
   behind a ``DataLoader`` (batch 128, shuffle, default workers), same model, loss and optimiser
   (autograd); and that loop again with ``fit``'s fused Adam.

Prints the times (best of ``--repeats``, interleaved), their ratio, and the achieved FLOP/s of each as
a fraction of a dense 2048² matmul measured in the same run. Models are built outside the timing.
Not a test: the numbers depend on the machine and its load.
Usage: python benchmarks/train_speed.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vaelib.data import load_dataset, to_float
from vaelib.losses import elbo_terms
from vaelib.models import MLPVAE
from vaelib.train import fit, seed_everything

BATCH = 128


class PerItemImages(Dataset):
    """torchvision-style: one image at a time, converted like ``transforms.ToTensor()``."""

    def __init__(self, images_u8: np.ndarray):
        self.images = images_u8

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.images[i].astype(np.float32) / 255.0).unsqueeze(0), 0


def dataloader_epoch(model: torch.nn.Module, images_u8: np.ndarray, fused_adam: bool = False) -> None:
    """pytorch/examples' VAE training loop (BCE + KL, Adam 1e-3); ``fused_adam`` swaps in the
    optimiser ``fit`` uses, to separate the data path from the optimiser in the comparison."""
    loader = DataLoader(PerItemImages(images_u8), batch_size=BATCH, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused_adam or None)
    model.train()
    for x, _ in loader:
        logits, mu, logvar = model(x)
        loss = elbo_terms(logits, x, mu, logvar)["total"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def vaelib_epoch(model: torch.nn.Module, x: torch.Tensor) -> None:
    fit(model, x, epochs=1, batch_size=BATCH, seed=0, device="cpu", progress=False)


def train_flops_per_image(model: MLPVAE) -> float:
    """FLOPs (2 per multiply-add) of the linear layers for one training image, counted the usual
    way: 3× the forward pass."""
    return 3.0 * sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))


def matmul_flops_per_s(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timings per method; the fastest is kept")
    args = ap.parse_args()
    ds = load_dataset("fashion-mnist", "train")
    print(f"data: fashion-mnist train, {len(ds):,} images from {ds.provenance['source']}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    x = to_float(ds.images)
    u8 = ds.images.numpy()
    methods = {
        "vaelib.fit": lambda model: vaelib_epoch(model, x),
        "DataLoader (pytorch/examples)": lambda model: dataloader_epoch(model, u8),
        "DataLoader + fit's fused Adam": lambda model: dataloader_epoch(model, u8, fused_adam=True),
    }
    times = {name: [] for name in methods}
    for _ in range(args.repeats):  # interleaved, so load changes hit all alike
        for name, run in methods.items():
            seed_everything(0)
            model = MLPVAE(2)  # built outside the timing: the epoch is timed, not the initialisation
            times[name].append(_timed(lambda: run(model)))
    peak = matmul_flops_per_s()
    per_image = train_flops_per_image(MLPVAE(2))
    work = per_image * len(ds)
    best = {k: min(v) for k, v in times.items()}
    for name, t in best.items():
        print(f"{name:>29}: {t:6.2f} s/epoch  {work / t / 1e9:6.1f} GFLOP/s  "
              f"= {100 * work / t / peak:5.1f} % of a 2048² matmul ({peak / 1e9:.1f} GFLOP/s)")
    base, plain, fused = best.values()
    print(f"(FLOPs counted the usual way, 3× the forward pass: {per_image / 1e6:.2f} MFLOP per image)")
    print(f"speed-up of vaelib.fit over the pytorch/examples DataLoader loop: {plain / base:.2f}×; "
          f"over the same loop with fit's fused Adam (the data path alone): {fused / base:.2f}×")


if __name__ == "__main__":
    main()
