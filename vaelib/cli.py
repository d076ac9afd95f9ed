"""The ``vae`` command in seed 000's grammar (``USAGE``). ``vae.pth`` loads with ``torch.load(weights_only=True)``,
``gmm_params.pkl`` (the seed's name) is NPZ content read with ``allow_pickle=False``: no code in either runs.
Bad input: one line ``vae: error: <where>: <problem>; expected <what>`` on stderr, exit status 2, no output."""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import gmm, metrics, plots
from .data import load_arrays, to_float
from .experiments import CHAPTERS
from .errors import InputError
from .losses import LIKELIHOODS
from .models import MAX_LATENT, MAX_LAYERS, MAX_WIDTH, VAE, build_model, load_model, save_model
from .store import atomic_path, atomic_write
from .train import RunConfig, default_device, epoch_budget, fit, seed_everything

USAGE = {"train": "vae TRAIN VAL train vae.pth gmm_params.pkl [options]",
         "test_reconstruction": "vae TEST test_reconstruction vae.pth [options]",
         "test_classifier": "vae TEST test_classifier vae.pth gmm_params.pkl [options]"}
OUTPUT = {"test_reconstruction": (".png", "reconstructions"), "test_classifier": (".csv", "predictions")}
DATA_HELP = ("a .npz (images under x/images/data, labels under y/labels/targets) or .npy (images) file; "
             "images N×28×28 or N×784, uint8 0–255 or float 0–1")
TOP_HELP = "usage:\n" + "".join(f"  {u}\n" for u in USAGE.values()) + f"""  python -m vaelib report|sweep|store ...

Train a VAE on unlabelled 28×28 images and classify them with a Gaussian mixture on its latent space
(seed 000). `vae <command> --help` (e.g. `vae train --help`) describes each command and its options.
TRAIN, VAL, TEST: {DATA_HELP}. VAL needs labels. Errors: one line on stderr, exit status 2, no output.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's hook: a usage error becomes one InputError line
        raise InputError(f"{message}; expected `{self.usage}` (see `vae {self.prog.split()[-1]} --help`)")


HIDDEN = list(CHAPTERS["06_gmm"]["full"]["hidden"])  # the MLP of chapter 06, which reproduces seed 000's vae.py


def _number(kind: type, low: float, high: float):
    """An argparse type: an integer from ``low`` to ``high``, or a finite float above ``low`` and at most ``high``
    (argparse reports what ``kind`` rejects, and names the option)."""
    def number(text: str):
        value = kind(text)
        if kind is float and not (np.isfinite(value) and low < value <= high):
            raise argparse.ArgumentTypeError(f"{text} is not a positive number ≤ {high:g}")
        if kind is int and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not {f'≥ {low}' if value < low else f'≤ {high}'}; "
                                             f"expected {low} … {high}")
        return value
    return number


def _parser(command: str) -> _Parser:
    p = _Parser(prog=f"vae {command}", usage=USAGE[command], description=RUN[command].__doc__)
    add = p.add_argument
    writes = " to write" if command == "train" else ""
    if command == "train":
        add("train", metavar="TRAIN", type=Path, help=f"training images (labels optional, unused): {DATA_HELP}")
        add("val", metavar="VAL", type=Path, help="validation images with labels (they define the classes)")
    else:
        add("test", metavar="TEST", type=Path, help=f"test images (labels optional): {DATA_HELP}")
    add("model", metavar="vae.pth", type=Path, help="the model file" + writes)
    if command != "test_reconstruction":
        add("gmm", metavar="gmm_params.pkl", type=Path, help="the mixture file (NPZ content)" + writes)
    if command == "train":
        add("--epochs", type=_number(int, 1, 10**6), help="train exactly this many epochs, no early stopping (default: at "
            "least 20 epochs and --min-steps optimiser steps, stopped once validation -ELBO has not improved for "
            "--patience epochs; the best epoch's weights are kept)")
        add("--min-steps", type=_number(int, 1, 10**9), default=5000,
            help="default 5000 (small training files get more epochs)")
        add("--patience", type=_number(int, 1, 10**6), default=20,
            help="early-stopping patience in epochs (default 20)")
        add("--latent-dim", type=_number(int, 1, MAX_LATENT), default=2, help="latent size (default 2)")
        add("--arch", choices=("mlp", "conv", "conv-tanh"), default="mlp",
            help="default mlp; conv-tanh is seed 002's tanh-output conv VAE, trained with --likelihood mse")
        add("--likelihood", choices=LIKELIHOODS, help="reconstruction term: bernoulli (default) or, for conv-tanh "
            "and only there, mse (its default)")
        add("--beta", type=_number(float, 0, 1e6), default=1.0, help="weight of the KL term (seed 002's alpha; default 1)")
        add("--hidden", type=_widths, default=HIDDEN, help="the MLP's hidden layer widths, comma-separated (default "
            f"{','.join(map(str, HIDDEN))}, chapter 06's; seed 004's MLP is 400)")
        add("--batch-size", type=_number(int, 1, 2**20), default=128, help="default 128")
        add("--lr", type=_number(float, 0, 10), default=1e-3, help="Adam learning rate (default 1e-3)")
        add("--seed", type=_number(int, 0, 2**32 - 1), default=0,
            help="seeds Python, NumPy, torch and the GMM: 0 to 2**32-1 (default 0)")
        add("--resume", metavar="PATH", type=Path, help="continue the training saved in PATH, a vae.pth written by "
            "`vae train` (it holds the optimiser and random-generator states and the history): --arch, --latent-dim, "
            "--hidden, --likelihood, --beta, --batch-size, --lr and --seed as then; the epoch budget counts the epochs trained already")
    else:
        kind = "reconstruction grid (.png)" if command == "test_reconstruction" else "predictions (.csv)"
        add("--out", metavar="PATH", help=f"where the {kind} goes: a file with that suffix or a folder "
                                          "(default: the model's folder, named after TEST)")
    if command == "test_reconstruction":
        add("--n-show", type=_number(int, 1, 1024), default=16, help="images in the grid (default 16)")
    add("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps (default auto)")
    return p


def _widths(text: str) -> list[int]:
    try:
        widths = [int(w) for w in text.split(",")]
    except ValueError:
        widths = []
    if not 1 <= len(widths) <= MAX_LAYERS or min(widths) < 1 or max(widths) > MAX_WIDTH:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 1 to {MAX_LAYERS} comma-separated layer widths "
                                         f"from 1 to {MAX_WIDTH}, e.g. 512,256")
    return widths


def _device(name: str) -> torch.device:
    try:
        dev = default_device() if name == "auto" else torch.device(name)
        if dev.type not in ("cpu", "cuda", "mps"):
            raise ValueError(dev.type)
        torch.empty(0, device=dev)  # fails unless this machine has that device
    except (RuntimeError, ValueError, AssertionError):  # (torch without CUDA asserts)
        raise InputError(f"--device {name!r}: unknown or not on this machine; "
                         "expected auto, cpu, cuda, cuda:N or mps") from None
    return dev


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the model's weights (names, shapes, dtypes, values): ties a GMM file to its model."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update((t.float() if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return h.hexdigest()


def _setup(a: argparse.Namespace) -> tuple[list[Path], torch.device]:
    """(outputs, device) of a command; InputError when an output is an input, a folder or given twice.
    A test command writes ``<TEST stem>_<name><suffix>`` (``OUTPUT``) in the model's folder or --out."""
    if a.command == "train":
        inputs, outputs = [a.train, a.val], [a.model, a.gmm]
    else:
        (suffix, name), out = OUTPUT[a.command], a.model.resolve().parent if a.out is None else Path(a.out)
        if out.suffix.lower() != suffix and out.exists() and not out.is_dir():
            raise InputError(f"--out {a.out}: an existing file without the {suffix} suffix; "
                             f"expected a folder or a {suffix} file")
        inputs = [a.test, a.model, *([a.gmm] if a.command == "test_classifier" else [])]
        outputs = [out if out.suffix.lower() == suffix else out / f"{a.test.stem}_{name}{suffix}"]
    for i, out in enumerate(outputs):
        if any(out.resolve() == p.resolve() for p in inputs):
            raise InputError(f"{out}: is also an input file; expected a different output path")
        if any(out.resolve() == p.resolve() for p in outputs[i + 1:]):
            raise InputError(f"{out}: given twice as an output; expected two different files")
        if out.is_dir():
            raise InputError(f"{out}: is a folder; expected a file path")
    return outputs, _device(a.device)


def _images(path: Path, require_labels: bool = False) -> tuple[torch.Tensor, np.ndarray | None]:
    x, y = load_arrays(path, require_labels=require_labels)
    return to_float(torch.from_numpy(x)), y


def _test_inputs(a: argparse.Namespace) -> tuple[Path, torch.Tensor, np.ndarray | None, VAE]:
    """Where a test command starts: (output path, TEST images, TEST labels or None, model)."""
    (out,), device = _setup(a)
    x, y = _images(a.test)
    return out, x, y, load_model(a.model, device)[0]


def _train(a: argparse.Namespace) -> None:
    """Train an MLP VAE on the TRAIN images (labels not used), fit a Gaussian mixture on the latent means (one
    component per class in VAL, means started at VAL's class means, settings chosen on VAL), print validation
    metrics, and write vae.pth and gmm_params.pkl."""
    _, device = _setup(a)
    (x_tr, y_tr), (x_va, y_va) = _images(a.train), _images(a.val, require_labels=True)
    classes = np.unique(y_va).tolist()
    extra = [] if y_tr is None else np.setdiff1d(y_tr, classes).tolist()
    if len(classes) < 2:
        raise InputError(f"{a.val}: labels hold only class {classes}; expected at least two classes")
    if extra:
        raise InputError(f"{a.train}: labels {extra} are not among the classes of {a.val} {classes}; "
                         "expected VAL to hold every class")
    if len(x_tr) < len(classes):
        raise InputError(f"{a.train}: {len(x_tr)} images; expected at least {len(classes)} "
                         f"(one mixture component per class in {a.val})")
    seed_everything(a.seed)
    model = build_model(a.arch, a.latent_dim, **({"hidden": a.hidden} if a.arch == "mlp" else {}))
    t0 = time.perf_counter()
    budget = RunConfig(epochs=20, batch_size=a.batch_size, min_steps=a.min_steps)
    epochs, patience = (a.epochs, 0) if a.epochs else (epoch_budget(budget, len(x_tr)), a.patience)
    with tempfile.TemporaryDirectory() as tmp:  # fit's final training state, which vae.pth keeps for --resume
        history = fit(model, x_tr, x_va, epochs=epochs, batch_size=a.batch_size, lr=a.lr, seed=a.seed, device=device,
                      beta=a.beta, likelihood=a.likelihood or ("mse" if model.output == "tanh" else "bernoulli"),
                      val_metrics=True, patience=patience, checkpoint_path=Path(tmp) / "state.pt", checkpoint_every=0,
                      resume_from=a.resume)
        state = torch.load(Path(tmp) / "state.pt", weights_only=True)
    seconds = time.perf_counter() - t0
    h = min(history, key=lambda r: r["val_total"]) if patience else history[-1]  # the epoch whose weights are kept
    z_tr, z_va = model.latents(x_tr), model.latents(x_va)
    best, _ = gmm.select_gmm(z_tr, z_va, y_va, classes, seed=a.seed)
    clf = gmm.fit_classifier(z_tr, z_va, y_va, classes, seed=a.seed, **best)
    val = gmm.classification_metrics(y_va, clf.predict(z_va), classes)
    meta = {"model_sha256": model_fingerprint(model), "latent_dim": model.latent_dim, "arch": model.arch,
            "classes": classes, "selection": best, "seed": a.seed, "val": val}
    with atomic_path(a.model) as tmp_model, atomic_path(a.gmm) as tmp_gmm:
        save_model(model, tmp_model, extra={"classes": classes, "trained_by": "vae train", "epochs": len(history), "seed":
                                            a.seed, "n_train": len(x_tr), "n_val": len(x_va), "history": history,
                                            "training_state": state})
        gmm.save_gmm(tmp_gmm, clf, meta)
    stop = f"; kept epoch {h['epoch']}, the lowest validation -ELBO" if patience else ""
    stop += f"; resumed from {a.resume}" if a.resume else ""
    print(f"trained {model.arch} VAE (latent {model.latent_dim}) for {len(history)} epochs on {len(x_tr):,} images "
          f"from {a.train} ({device}, {seconds:.1f} s{stop})")
    loss = "squared error + beta*KL" if model.output == "tanh" else "-ELBO"
    print(f"validation ({len(x_va):,} images, {a.val}): {loss} {h['val_total']:.2f} "
          f"{'per image' if model.output == 'tanh' else 'nats/image'}; "
          f"reconstruction from mu: MSE {h['val_mse']:.5f}, SSIM {h['val_ssim']:.4f}")
    print(f"GMM ({len(classes)} components = classes {classes}; {best['covariance_type']} covariance, "
          f"reg_covar {best['reg_covar']:g}, n_init {best['n_init']}, chosen on VAL): validation accuracy "
          f"{val['accuracy']:.4f}, macro-F1 {val['f1_macro']:.4f}, micro-F1 {val['f1_micro']:.4f}")
    print(f"wrote {a.model} and {a.gmm} (NPZ content; loads without unpickling)")


def _test_reconstruction(a: argparse.Namespace) -> None:
    """Reconstruct the TEST images from their posterior means; print mean MSE and SSIM and write a grid of
    originals over reconstructions (PNG)."""
    png, x, _, model = _test_inputs(a)
    rec = torch.cat([model.reconstruct(x[i:i + 512].to(model.device)).cpu() for i in range(0, len(x), 512)])
    mse, ssim, n = metrics.mse(rec, x), metrics.ssim(rec, x), min(a.n_show, len(x))
    fig = plots.recon_rows(x[:n], rec[:n], captions=[f"{v:.2f}" for v in ssim[:n].tolist()],
                           title=f"{a.test.name}: originals / reconstructions from μ (SSIM under each)")
    plots.save_fig(fig, png)
    print(f"{a.test}: {len(x):,} images; reconstruction from mu: mean MSE {mse.mean():.5f}, "
          f"mean SSIM {ssim.mean():.4f}")
    print(f"wrote {png}")


def _test_classifier(a: argparse.Namespace) -> None:
    """Classify the TEST images with the VAE encoder and the mixture; print accuracy and macro/micro F1 when
    TEST has labels; always write the predictions as CSV."""
    csv, x, y, model = _test_inputs(a)
    clf, meta = gmm.load_gmm(a.gmm)
    classes, expected = clf.classes.tolist(), "expected the gmm_params file written with this model"
    if clf.gmm.n_features_in_ != model.latent_dim:
        raise InputError(f"{a.gmm}: fitted on {clf.gmm.n_features_in_}-D codes but {a.model} has latent size "
                         f"{model.latent_dim}; {expected}")
    if meta.get("model_sha256") and meta["model_sha256"] != model_fingerprint(model):
        raise InputError(f"{a.gmm}: fitted for another model (weights differ from {a.model}); {expected}")
    unknown = [] if y is None else np.setdiff1d(y, classes).tolist()
    if unknown:
        raise InputError(f"{a.test}: labels {unknown} are not among the model's classes {classes}; "
                         f"expected labels in {classes} (or none)")
    proba = clf.predict_proba(model.latents(x))
    pred = clf.classes[proba.argmax(1)]
    table = pd.DataFrame({"index": np.arange(len(pred)), "predicted": pred, **({} if y is None else {"label": y}),
                          **{f"p_{c}": proba[:, j].round(6) for j, c in enumerate(classes)}})
    with atomic_write(csv, "w") as f:
        table.to_csv(f, index=False)
    if y is None:
        counts = {c: int(np.sum(pred == c)) for c in classes}
        print(f"{a.test}: {len(pred):,} images, no labels; predicted per class {counts}")
    else:
        m = gmm.classification_metrics(y, pred, classes)
        print(f"{a.test}: {len(pred):,} images; accuracy {m['accuracy']:.4f}, macro-F1 {m['f1_macro']:.4f}, "
              f"micro-F1 {m['f1_micro']:.4f} (macro precision {m['precision_macro']:.4f}, "
              f"macro recall {m['recall_macro']:.4f})")
    print(f"wrote {csv}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vae`` console script; returns the exit status (0, or 2 on bad input)."""
    argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in (sys.argv[1:] if argv is None else argv)]
    command = next((a for a in argv if a in USAGE), None)
    try:
        if command is None and {"-h", "--help"} & set(argv):
            print(TOP_HELP, end="")
            return 0
        if command is None:
            raise InputError(f"command: none of {', '.join(USAGE)} in {' '.join(argv) or '(no arguments)'!r}; "
                             f"expected `{USAGE['train']}` or a test command (see `vae --help`)")
        argv.remove(command)
        RUN[command](_parser(command).parse_args(argv, argparse.Namespace(command=command)))
        return 0
    except SystemExit as e:  # --help (0)
        return e.code if isinstance(e.code, int) else 0
    except InputError as e:
        print(f"vae: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except OSError as e:  # cannot write an output, disk full, permission denied, ...
        print(f"vae: error: {e.filename or 'output'}: {e.strerror or e}; expected a writable path", file=sys.stderr)
        return 2


RUN = {"train": _train, "test_reconstruction": _test_reconstruction, "test_classifier": _test_classifier}

if __name__ == "__main__":  # python -m vaelib.cli ...
    sys.exit(main())
