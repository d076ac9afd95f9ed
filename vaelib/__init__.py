"""vaelib: the small PyTorch package behind the vae-report notebooks.

One module per concern: data, models, losses, train, runs, metrics, fid, gmm, plots, report, cli.
"""

__version__ = "0.1.0"
