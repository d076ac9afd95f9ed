"""vaelib.data.download against a local HTTP server (127.0.0.1, random port): never the internet."""
import dataclasses
import gzip
import hashlib
import http.server
import io
import threading
import time
import zipfile

import numpy as np
import pytest

from vaelib import data
from vaelib.data import DATASETS, download, load_dataset
from vaelib.errors import InputError

from helpers import idx_bytes

PAYLOAD = gzip.compress(idx_bytes(np.arange(784, dtype=np.uint8).reshape(1, 28, 28)))
DIGEST = hashlib.sha256(gzip.decompress(PAYLOAD)).hexdigest()  # registry digests are of the IDX content
STALL = b"<stall>"  # a route's status (no answer at all) or its body's end (headers and part of the body, then silence)


@pytest.fixture
def server(monkeypatch):
    """Serves ``routes`` (path → (status, body, declared length or None)); records each requested path. Status
    ``STALL`` never answers; a body followed by ``STALL`` is sent (headers and all) and then the server stalls."""
    routes, requests, release = {}, [], threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            status, body, length = routes.get(self.path, (404, b"not found", None))
            if status == STALL:
                release.wait()
                return
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body.removesuffix(STALL))
            if body.endswith(STALL):
                self.wfile.flush()
                release.wait()

        def log_message(self, *args):
            pass

    monkeypatch.setenv("no_proxy", "127.0.0.1")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", routes, requests
    release.set()
    httpd.shutdown()
    httpd.server_close()


def get(url, dest, mirrors, digest=DIGEST, **kw):
    return download(["f.gz"], dest, [f"{url}/{m}/" for m in mirrors], {"f.gz": digest}, gunzip=True, online=True, **kw)


def test_good_download(server, tmp_path):
    url, routes, requests = server
    routes["/a/f.gz"] = (200, PAYLOAD, None)
    assert get(url, tmp_path / "d", ["a"]) == [tmp_path / "d" / "f.gz"]
    assert (tmp_path / "d" / "f.gz").read_bytes() == PAYLOAD and [p.name for p in (tmp_path / "d").iterdir()] == ["f.gz"]
    assert get(url, tmp_path / "d", ["a"]) and requests == ["/a/f.gz"]  # a file already there is kept


def test_wrong_sha256_is_refused_and_leaves_nothing(server, tmp_path):
    url, routes, _ = server
    routes["/a/f.gz"] = (200, PAYLOAD, None)
    with pytest.raises(data.DataUnavailable, match=r"f.gz: download failed \(.*/a/f.gz: SHA-256 of its gunzipped "
                                                   r"content is [0-9a-f]{16}…; expected 0000000000000000…"):
        get(url, tmp_path / "d", ["a"], digest="0" * 64)
    assert list((tmp_path / "d").iterdir()) == []


def test_truncated_body_is_refused(server, tmp_path):
    url, routes, _ = server
    routes["/a/f.gz"] = (200, PAYLOAD[:-20], len(PAYLOAD))
    with pytest.raises(InputError, match=rf"truncated: received {len(PAYLOAD) - 20} of {len(PAYLOAD)} bytes"):
        get(url, tmp_path / "d", ["a"])
    assert list((tmp_path / "d").iterdir()) == []


def test_404_then_a_good_mirror(server, tmp_path):
    url, routes, requests = server
    routes["/b/f.gz"] = (200, PAYLOAD, None)
    assert get(url, tmp_path / "d", ["a", "b"]) and requests == ["/a/f.gz", "/b/f.gz"]
    assert (tmp_path / "d" / "f.gz").read_bytes() == PAYLOAD
    with pytest.raises(InputError, match=r"/a/g.gz: HTTP Error 404.*/b/g.gz: HTTP Error 404"):
        download(["g.gz"], tmp_path / "d", [f"{url}/a/", f"{url}/b/"], {"g.gz": DIGEST}, online=True)
    with pytest.raises(InputError, match="h.gz: no SHA-256"):
        download(["h.gz"], tmp_path / "d", [f"{url}/a/"], {}, online=True)


def test_offline_makes_no_request(server, tmp_path, monkeypatch):
    url, routes, requests = server
    routes["/a/f.gz"] = (200, PAYLOAD, None)
    assert get(url, tmp_path / "d", ["a"]) and requests  # (the server works)
    requests.clear()
    assert download(["f.gz"], tmp_path / "e", [f"{url}/a/"], {"f.gz": DIGEST}, online=False) is None
    monkeypatch.setenv("VAELIB_OFFLINE", "1")
    data._online.cache_clear()
    assert download(["f.gz"], tmp_path / "e", [f"{url}/a/"], {"f.gz": DIGEST}) is None
    assert requests == [] and not (tmp_path / "e").exists()


def test_emnist_from_its_release_zip(server, tmp_path, monkeypatch):
    """The release zip is fetched and checked once; only the requested data set's files are taken out of it."""
    url, routes, requests = server
    arrays, buf = {}, io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in ("digits", "mnist"):
            for split, (fi, fl) in DATASETS[f"emnist-{name}"].files.items():
                x = np.random.default_rng(len(split)).integers(0, 256, (10, 28, 28), dtype=np.uint8)
                arrays[name, split] = x
                z.writestr(f"gzip/{fi}", gzip.compress(idx_bytes(x.transpose(0, 2, 1))))
                z.writestr(f"gzip/{fl}", gzip.compress(idx_bytes(np.arange(10, dtype=np.uint8))))
    archive = buf.getvalue()
    routes["/mirror2/gzip.zip"] = (200, archive, None)
    for name in ("digits", "mnist"):
        spec = DATASETS[f"emnist-{name}"]
        monkeypatch.setitem(DATASETS, spec.name, dataclasses.replace(
            spec, mirrors=(f"{url}/mirror1/", f"{url}/mirror2/"), sha256={"gzip.zip": hashlib.sha256(archive).hexdigest()}))
    monkeypatch.delenv("VAELIB_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(data, "_online", lambda: True)
    ds = load_dataset("emnist-digits", "test")
    assert ds.provenance["source"] == "download" and np.array_equal(ds.images.numpy(), arrays["digits", "test"])
    assert sorted(p.name for p in (tmp_path / "cache" / "emnist-digits").iterdir()) == sorted(
        f for pair in DATASETS["emnist-digits"].files.values() for f in pair)
    assert load_dataset("emnist-digits", "train").provenance["source"] == "download-cache"
    assert load_dataset("emnist-mnist", "train").provenance["source"] == "download"  # from the kept zip
    assert requests == ["/mirror1/gzip.zip", "/mirror2/gzip.zip"]


@pytest.mark.parametrize("stall", ["no answer", "headers then silence"])
def test_a_stalled_server_is_given_up_after_the_timeout(server, tmp_path, stall):
    """A mirror that accepts the request and then goes silent costs ``timeout`` seconds, not forever; the error
    names the URL, what was expected, and the digest; the next mirror is tried; nothing lands in ``dest``."""
    url, routes, requests = server
    routes["/a/f.gz"] = (STALL, b"", None) if stall == "no answer" else (200, PAYLOAD[:10] + STALL, len(PAYLOAD))
    expected = ("no response within 0.3 s; expected HTTP headers, then the file" if stall == "no answer" else
                f"no data for 0.3 s after 10 of {len(PAYLOAD)} bytes; expected the rest of the file")
    t0 = time.perf_counter()
    with pytest.raises(data.DataUnavailable) as err:
        get(url, tmp_path / "d", ["a"], timeout=0.3)
    assert time.perf_counter() - t0 < 10
    message = str(err.value)
    assert f"{url}/a/f.gz: stalled: {expected}" in message and f"expected a file whose gunzipped SHA-256 is " \
        f"{DIGEST[:16]}…" in message and "\n" not in message
    assert list((tmp_path / "d").iterdir()) == []
    routes["/b/f.gz"] = (200, PAYLOAD, None)  # a stalled mirror, then a good one
    assert get(url, tmp_path / "d", ["a", "b"], timeout=0.3) and requests[-2:] == ["/a/f.gz", "/b/f.gz"]
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["f.gz"]


def test_the_default_timeout_is_a_module_setting(server, tmp_path, monkeypatch):
    url, routes, _ = server
    routes["/a/f.gz"] = (STALL, b"", None)
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 0.2)
    with pytest.raises(data.DataUnavailable, match=r"/a/f.gz: stalled: no response within 0.2 s"):
        get(url, tmp_path / "d", ["a"])


def test_every_failure_names_the_url_and_the_expected_digest(server, tmp_path):
    url, routes, _ = server
    routes["/a/f.gz"] = (200, b"plain text, not gzip", None)
    routes["/b/f.gz"] = (500, b"oops", None)
    with pytest.raises(data.DataUnavailable) as err:
        get(url, tmp_path / "d", ["a", "b", "c"])
    message = str(err.value)
    for part in (f"{url}/a/f.gz: not gzip content (BadGzipFile", f"{url}/b/f.gz: HTTP Error 500",
                 f"{url}/c/f.gz: HTTP Error 404", f"SHA-256 is {DIGEST[:16]}…"):
        assert part in message, (part, message)
    assert list((tmp_path / "d").iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"file: not a folder .*; expected a folder to download f.gz into"):
        get(url, tmp_path / "file", ["a"])
    assert (tmp_path / "file").read_text() == "x"
