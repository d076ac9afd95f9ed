"""Lean, byte-stable outputs: a real chapter run twice by the report runner (smoke profile) writes the same
bytes, its executed copy refers to the saved figures instead of embedding them, and its PNGs carry no metadata."""

import io
import json
import struct
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest

from vaelib.report import run_report

CHAPTER = "00_data"  # the fastest chapter: no training


def _files(out: Path) -> dict[str, bytes]:
    """Every output file (build/ holds this run's timings and kernel logs: not outputs)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.relative_to(out).parts[0] != "build"}


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, i = [], 8
    while i < len(data):
        (length,), kind = struct.unpack(">I", data[i:i + 4]), data[i + 4:i + 8]
        chunks.append(kind)
        i += 12 + length
    return chunks


@pytest.mark.kernel
@pytest.mark.slow
def test_a_chapter_run_twice_writes_the_same_bytes(tmp_path):
    out = tmp_path / "out"
    run_report("smoke", CHAPTER, out=out, log=lambda *a, **k: None, stream=io.StringIO())
    first = _files(out)
    run_report("smoke", CHAPTER, out=out, log=lambda *a, **k: None, stream=io.StringIO())
    second = _files(out)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []
    assert f"reports/notebooks/{CHAPTER}.ipynb" in first and not [n for n in first if n.endswith(".html")]
    pngs = [n for n in first if n.endswith(".png")]
    assert pngs, "the chapter saved no figure"
    for name in pngs:
        assert not {b"tEXt", b"iTXt", b"zTXt", b"tIME"} & set(_png_chunks(first[name])), name
    # the executed copy shows each saved figure as a Markdown image of its file, and the link resolves
    nb = nbformat.reads(first[f"reports/notebooks/{CHAPTER}.ipynb"].decode(), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if "image/png" in o.get("data", {})]
    links = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})
             and o["data"]["text/markdown"].startswith("![")]
    assert links
    for link in links:
        target = unquote(link[link.index("](") + 2:-1])
        assert (out / "reports/notebooks" / target).resolve().is_file(), link
    meta = json.dumps(nb.metadata)
    assert "time" not in meta and "duration" not in meta and str(tmp_path) not in meta
