"""The ``vae`` command, in seed 000's grammar::

    vae TRAIN VAL train vae.pth gmm_params.pkl      train the VAE on TRAIN (no labels needed), fit the
                                                    GMM (VAL's labels place its means), write both files
    vae TEST test_reconstruction vae.pth            mean MSE and SSIM of reconstructions from μ, and a
                                                    grid PNG
    vae TEST test_classifier vae.pth gmm_params.pkl accuracy, macro/micro F1 (when TEST has labels) and
                                                    the predictions as CSV

TRAIN, VAL and TEST are ``.npz`` (images under x/images/data, labels under y/labels/targets) or
``.npy`` (images) files: N×28×28 or N×784, uint8 0–255 or float 0–1. ``vae.pth`` holds the weights
and what rebuilds the model (architecture, latent size) and loads with
``torch.load(weights_only=True)``. ``gmm_params.pkl`` keeps the seed's name but is NPZ content,
read with ``allow_pickle=False``: no code in either file is ever executed.

Bad input: one line ``vae: error: <file or value>: <problem>; expected <what>`` on stderr, exit
status 2, and no output file is written or half-written.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .errors import InputError

__all__ = ["main", "COMMANDS", "model_fingerprint"]

COMMANDS = ("train", "test_reconstruction", "test_classifier")
USAGE = {
    "train": "vae TRAIN VAL train vae.pth gmm_params.pkl [options]",
    "test_reconstruction": "vae TEST test_reconstruction vae.pth [options]",
    "test_classifier": "vae TEST test_classifier vae.pth gmm_params.pkl [options]",
}
DESCRIPTION = {
    "train": "Train an MLP VAE on the TRAIN images (labels not used), fit a Gaussian mixture on the latent "
             "means (one component per class in VAL, means started at VAL's class means, settings chosen "
             "on VAL), print validation metrics, and write vae.pth and gmm_params.pkl.",
    "test_reconstruction": "Reconstruct the TEST images from their posterior means; print mean MSE and SSIM "
                           "and write a grid of originals over reconstructions (PNG).",
    "test_classifier": "Classify the TEST images with the VAE encoder and the mixture; print accuracy and "
                       "macro/micro F1 when TEST has labels; always write the predictions as CSV.",
}
DATA_HELP = ("a .npz (images under x/images/data, labels under y/labels/targets) or .npy (images) file; "
             "images N×28×28 or N×784, uint8 0–255 or float 0–1")
TOP_HELP = f"""usage:
  {USAGE['train']}
  {USAGE['test_reconstruction']}
  {USAGE['test_classifier']}
  python -m vaelib report [--profile smoke|full] [--only NAME]

Train a VAE on unlabelled 28×28 images and classify them with a Gaussian mixture on its latent space
(seed 000). `vae <command> --help` (e.g. `vae train --help`) describes each command and its options.

TRAIN, VAL, TEST: {DATA_HELP}. VAL needs labels.
Errors: one line on stderr, exit status 2, no partial output files.
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as InputError (one line, exit status 2)."""

    def error(self, message: str):  # noqa: D401 (argparse API)
        raise InputError(f"{message}; expected `{self.usage}` (see `vae {self.prog.split()[-1]} --help`)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not ≥ 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _parser(command: str) -> _Parser:
    p = _Parser(prog=f"vae {command}", usage=USAGE[command], description=DESCRIPTION[command])
    if command == "train":
        p.add_argument("train", metavar="TRAIN", help=f"training images (labels optional, unused): {DATA_HELP}")
        p.add_argument("val", metavar="VAL", help="validation images with labels (they define the classes)")
    else:
        p.add_argument("test", metavar="TEST", help=f"test images (labels optional): {DATA_HELP}")
    p.add_argument("model", metavar="vae.pth", help="the model file" + (" to write" if command == "train" else ""))
    if command != "test_reconstruction":
        p.add_argument("gmm", metavar="gmm_params.pkl",
                       help="the mixture file (NPZ content)" + (" to write" if command == "train" else ""))
    if command == "train":
        p.add_argument("--epochs", type=_positive_int, default=20, help="training epochs (default 20)")
        p.add_argument("--latent-dim", type=_positive_int, default=2, help="latent size (default 2)")
        p.add_argument("--arch", choices=("mlp", "conv"), default="mlp", help="encoder/decoder (default mlp, 784-400-z)")
        p.add_argument("--batch-size", type=_positive_int, default=128, help="default 128")
        p.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
        p.add_argument("--seed", type=int, default=0, help="seeds Python, NumPy, torch and the GMM (default 0)")
    if command == "test_reconstruction":
        p.add_argument("--n-show", type=_positive_int, default=16, help="images in the grid (default 16)")
    if command != "train":
        kind = "reconstruction grid (.png)" if command == "test_reconstruction" else "predictions (.csv)"
        p.add_argument("--out", metavar="PATH",
                       help=f"where the {kind} goes: a file with that suffix or a folder "
                            "(default: the model's folder, named after TEST)")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps (default auto)")
    return p


# ---------------------------------------------------------------- helpers

def _device(name: str) -> torch.device:
    from .train import default_device

    if name in (None, "", "auto"):
        return default_device()
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"--device {name!r}: unknown; expected auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine; expected auto or cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                         "expected a smaller index")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError(f"--device {name}: MPS is not available on this machine; expected auto or cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device {name!r}: unsupported; expected auto, cpu, cuda, cuda:N or mps")
    return dev


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the model's weights (names, shapes, dtypes, values): ties a GMM file to its model."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _check_outputs(outputs: list[Path], inputs: list[Path]) -> None:
    for i, out in enumerate(outputs):
        for inp in inputs:
            if _same_file(out, inp):
                raise InputError(f"{out}: is also an input file; expected a different output path")
        for other in outputs[i + 1:]:
            if _same_file(out, other):
                raise InputError(f"{out}: given twice as an output; expected two different files")
        if out.is_dir():
            raise InputError(f"{out}: is a folder; expected a file path")


def _output_path(out: str | None, model: Path, test: Path, suffix: str, name: str) -> Path:
    if out is None:
        return model.resolve().parent / f"{test.stem}_{name}{suffix}"
    out_path = Path(out)
    if out_path.suffix.lower() == suffix:
        return out_path
    if out_path.exists() and not out_path.is_dir():
        raise InputError(f"--out {out}: an existing file without the {suffix} suffix; expected a folder or a {suffix} file")
    return out_path / f"{test.stem}_{name}{suffix}"


def _reconstruct(model, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([model.reconstruct(x[i:i + batch_size].to(model.device)).cpu()
                      for i in range(0, len(x), batch_size)])


def _fmt_classes(classes) -> str:
    return "[" + ", ".join(str(int(c)) for c in classes) + "]"


# ---------------------------------------------------------------- commands

def _train(a: argparse.Namespace) -> int:
    from . import gmm
    from .data import load_arrays, to_float
    from .io import atomic_path
    from .models import build_model
    from .runs import save_model
    from .seeding import seed_everything
    from .train import fit

    train_path, val_path, model_path, gmm_path = map(Path, (a.train, a.val, a.model, a.gmm))
    _check_outputs([model_path, gmm_path], [train_path, val_path])
    device = _device(a.device)
    x_tr, y_tr = load_arrays(train_path)
    x_va, y_va = load_arrays(val_path, require_labels=True)
    classes = [int(c) for c in np.unique(y_va)]
    if len(classes) < 2:
        raise InputError(f"{val_path}: labels hold only class {classes}; expected at least two classes")
    if y_tr is not None:
        extra = sorted(set(np.unique(y_tr).tolist()) - set(classes))
        if extra:
            raise InputError(f"{train_path}: labels {extra} are not among the classes of {val_path} "
                             f"{_fmt_classes(classes)}; expected VAL to hold every class")
    if len(x_tr) < len(classes):
        raise InputError(f"{train_path}: {len(x_tr)} images; expected at least {len(classes)} "
                         f"(one mixture component per class in {val_path})")
    seed_everything(a.seed)
    model = build_model(a.arch, a.latent_dim)
    t0 = time.perf_counter()
    history = fit(model, to_float(torch.from_numpy(x_tr)), to_float(torch.from_numpy(x_va)), epochs=a.epochs,
                  batch_size=a.batch_size, lr=a.lr, seed=a.seed, device=device, val_metrics=True)
    seconds = time.perf_counter() - t0
    z_tr = model.latents(to_float(torch.from_numpy(x_tr)))
    z_va = model.latents(to_float(torch.from_numpy(x_va)))
    best, _ = gmm.select_gmm(z_tr, z_va, y_va, classes, seed=a.seed)
    clf = gmm.fit_classifier(z_tr, z_va, y_va, classes, seed=a.seed, **best)
    val = gmm.classification_metrics(y_va, clf.predict(z_va), classes)
    meta = {"model_sha256": model_fingerprint(model), "latent_dim": model.latent_dim, "arch": model.arch,
            "classes": classes, "selection": best, "seed": a.seed, "val": val}
    extra = {"classes": classes, "trained_by": "vae train", "epochs": a.epochs, "seed": a.seed,
             "n_train": len(x_tr), "n_val": len(x_va), "history": history}
    with atomic_path(model_path) as tmp_model, atomic_path(gmm_path) as tmp_gmm:
        save_model(model, tmp_model, extra=extra)
        gmm.save_gmm(tmp_gmm, clf, meta)
    h = history[-1]
    print(f"trained {model.arch} VAE (latent {model.latent_dim}) for {a.epochs} epochs on {len(x_tr):,} images "
          f"from {train_path} ({device}, {seconds:.1f} s)")
    print(f"validation ({len(x_va):,} images, {val_path}): -ELBO {h['val_total']:.2f} nats/image; "
          f"reconstruction from mu: MSE {h['val_mse']:.5f}, SSIM {h['val_ssim']:.4f}")
    print(f"GMM ({len(classes)} components = classes {_fmt_classes(classes)}; {best['covariance_type']} covariance, "
          f"reg_covar {best['reg_covar']:g}, n_init {best['n_init']}, chosen on VAL): validation accuracy "
          f"{val['accuracy']:.4f}, macro-F1 {val['f1_macro']:.4f}, micro-F1 {val['f1_micro']:.4f}")
    print(f"wrote {model_path} and {gmm_path} (NPZ content; loads without unpickling)")
    return 0


def _test_reconstruction(a: argparse.Namespace) -> int:
    from . import plots
    from .data import load_arrays, to_float
    from .metrics import mse, ssim
    from .runs import load_model

    test_path, model_path = Path(a.test), Path(a.model)
    png = _output_path(a.out, model_path, test_path, ".png", "reconstructions")
    _check_outputs([png], [test_path, model_path])
    device = _device(a.device)
    x_u8, _ = load_arrays(test_path)
    model, _ = load_model(model_path, device)
    x = to_float(torch.from_numpy(x_u8))
    rec = _reconstruct(model, x)
    m, s = mse(rec, x), ssim(rec, x)
    n = min(a.n_show, len(x))
    fig = plots.recon_rows(x[:n], rec[:n], captions=[f"{v:.2f}" for v in s[:n].tolist()],
                           title=f"{test_path.name}: originals / reconstructions from μ (SSIM under each)")
    plots.save_fig(fig, png)
    print(f"{test_path}: {len(x):,} images; reconstruction from mu: mean MSE {m.mean():.5f}, "
          f"mean SSIM {s.mean():.4f}")
    print(f"wrote {png}")
    return 0


def _test_classifier(a: argparse.Namespace) -> int:
    import pandas as pd

    from . import gmm
    from .data import load_arrays, to_float
    from .io import atomic_write
    from .runs import load_model

    test_path, model_path, gmm_path = Path(a.test), Path(a.model), Path(a.gmm)
    csv = _output_path(a.out, model_path, test_path, ".csv", "predictions")
    _check_outputs([csv], [test_path, model_path, gmm_path])
    device = _device(a.device)
    x_u8, y = load_arrays(test_path)
    model, _ = load_model(model_path, device)
    clf, meta = gmm.load_gmm(gmm_path)
    if clf.latent_dim != model.latent_dim:
        raise InputError(f"{gmm_path}: fitted on {clf.latent_dim}-D codes but {model_path} has latent size "
                         f"{model.latent_dim}; expected the gmm_params file written together with this model")
    if meta.get("model_sha256") and meta["model_sha256"] != model_fingerprint(model):
        raise InputError(f"{gmm_path}: fitted for another model (weights differ from {model_path}); "
                         "expected the gmm_params file written together with this model")
    classes = [int(c) for c in clf.classes]
    if y is not None:
        unknown = sorted(set(np.unique(y).tolist()) - set(classes))
        if unknown:
            raise InputError(f"{test_path}: labels {unknown} are not among the model's classes "
                             f"{_fmt_classes(classes)}; expected labels in {_fmt_classes(classes)} (or none)")
    z = model.latents(to_float(torch.from_numpy(x_u8)))
    pred, proba = clf.predict(z), clf.predict_proba(z)
    table = pd.DataFrame({"index": np.arange(len(pred)), "predicted": pred})
    if y is not None:
        table["label"] = y
    for j, c in enumerate(classes):
        table[f"p_{c}"] = proba[:, j].round(6)
    with atomic_write(csv, "w") as f:
        table.to_csv(f, index=False)
    if y is not None:
        m = gmm.classification_metrics(y, pred, classes)
        print(f"{test_path}: {len(pred):,} images; accuracy {m['accuracy']:.4f}, macro-F1 {m['f1_macro']:.4f}, "
              f"micro-F1 {m['f1_micro']:.4f} (macro precision {m['precision_macro']:.4f}, "
              f"macro recall {m['recall_macro']:.4f})")
    else:
        counts = {c: int(np.sum(pred == c)) for c in classes}
        print(f"{test_path}: {len(pred):,} images, no labels; predicted per class {counts}")
    print(f"wrote {csv}")
    return 0


RUN = {"train": _train, "test_reconstruction": _test_reconstruction, "test_classifier": _test_classifier}


def _split(argv: list[str]) -> tuple[str | None, list[str]]:
    """The first command word and the other arguments."""
    for i, arg in enumerate(argv):
        if arg in COMMANDS:
            return arg, argv[:i] + argv[i + 1:]
    return None, argv


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vae`` console script; returns the exit status (0, or 2 on bad input)."""
    argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in (sys.argv[1:] if argv is None else argv)]
    command, rest = _split(argv)
    try:
        if command is None:
            if any(a in ("-h", "--help") for a in argv):
                print(TOP_HELP, end="")
                return 0
            got = " ".join(argv) or "(no arguments)"
            raise InputError(f"command: none of {', '.join(COMMANDS)} in {got!r}; expected "
                             f"`{USAGE['train']}` or a test command (see `vae --help`)")
        args = _parser(command).parse_args(rest)
        return RUN[command](args)
    except SystemExit as e:  # --help (0)
        return e.code if isinstance(e.code, int) else 0
    except InputError as e:
        print(f"vae: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except OSError as e:  # cannot write an output, disk full, permission denied, ...
        where = e.filename or "output"
        print(f"vae: error: {where}: {e.strerror or e}; expected a writable path", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
