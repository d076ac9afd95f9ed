"""vaelib: the small PyTorch package behind the vae-report notebooks.

One module per concern: data, models, losses, train, store, experiments, metrics, fid, gmm, plots,
report, cli (see the README's Layout section).
"""

__version__ = "0.1.0"
