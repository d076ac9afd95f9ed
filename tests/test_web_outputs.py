"""How figures and GIFs are written for the web: palette PNGs without metadata, GIFs re-encoded (and thinned
only when over the size cap) with the same length and loop."""

import io

import numpy as np
import pytest
from PIL import Image, ImageSequence

from vaelib import plots


def _gif(frames: int, size: int = 64, seed: int = 0, fps: float = 5, noise: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    base = np.full((size, size, 3), 255, np.uint8)
    out = []
    for t in range(frames):
        f = rng.integers(0, 256, (size, size, 3), dtype=np.uint8) if noise else base.copy()
        f[t % size, :, :] = (31 * t % 256, 0, 120)  # a moving line: every frame differs
        out.append(f)
    return plots.gif_bytes(out, fps=fps, hold_s=1.0)


def _durations(data: bytes) -> tuple[list[int], object]:
    with Image.open(io.BytesIO(data)) as im:
        return [f.info.get("duration", 0) for f in ImageSequence.Iterator(im)], im.info.get("loop")


def test_web_gif_keeps_frames_timing_and_loop():
    data = _gif(12)
    lean = plots.web_gif(data)
    (before, loop_before), (after, loop_after) = _durations(data), _durations(lean)
    assert after == before and loop_after == loop_before == 0
    assert len(lean) <= len(data)
    assert plots.web_gif(lean) == plots.web_gif(lean)  # deterministic


def test_web_gif_thins_a_gif_over_the_limit_keeping_its_length(monkeypatch):
    monkeypatch.setattr(plots, "_WEB_GIF_BYTES", 200_000)
    data = _gif(60, size=96, noise=True)
    lean = plots.web_gif(data)
    (before, _), (after, _) = _durations(data), _durations(lean)
    assert len(lean) <= 200_000 or len(after) <= plots._WEB_GIF_MIN_FRAMES
    assert len(after) < len(before) and sum(after) == sum(before) and after[-1] == before[-1]  # the hold stays


def test_save_fig_writes_a_palette_png_without_metadata(tmp_path):
    fig = plots.image_grid(np.linspace(0, 1, 4 * 28 * 28, dtype=np.float32).reshape(4, 28, 28), nrow=2)
    path = plots.save_fig(fig, tmp_path / "grid.png", author="A. Tester")
    assert fig.saved_as == path.absolute()
    raw = path.read_bytes()
    assert b"tEXt" not in raw and b"iTXt" not in raw and b"Software" not in raw
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    with Image.open(path) as lean, Image.open(buf) as full:
        assert lean.mode == "P" and lean.size == full.size
        err = np.abs(np.asarray(lean.convert("RGB"), float) - np.asarray(full.convert("RGB"), float)).mean()
    assert err < 1.0  # grey levels per channel, mean over pixels
    assert plots.save_fig(fig, tmp_path / "again.png").read_bytes() == raw  # same figure, same bytes


@pytest.mark.parametrize("data", [b"not a gif"])
def test_save_bytes_leaves_other_bytes_alone(tmp_path, data):
    assert plots.save_bytes(data, tmp_path / "x.bin").read_bytes() == data
