"""JupyterLab as `make lab` starts it: a real server on 127.0.0.1 (random port, token), its REST API lists
notebooks/, starts the project's kernel, and a notebook's cells run in that kernel (smoke profile) over the
kernel's websocket; the kernel and the server are always shut down."""

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "00_data.ipynb"  # the fastest chapter in the smoke profile
START_S, CELL_S = 120, 300  # bounds (a loaded 2-core CPU): server start, one cell (the first imports torch)

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def api(self, path: str, method: str = "GET", body: dict | None = None) -> dict | list | None:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
        return json.loads(text) if text else None

    def page(self, path: str) -> str:
        req = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read().decode()


@pytest.fixture
def lab(tmp_path):
    """`jupyter lab` on 127.0.0.1 with a random port and token, served from the project root (as `make lab`)."""
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / "lab.log", "w")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}",
         "--MappingKernelManager.default_kernel_name=vae-report", *(["--allow-root"] if os.geteuid() == 0 else [])],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", token)
    try:
        deadline = time.monotonic() + START_S
        while True:
            try:
                server.api("/api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start in {START_S} s:\n{(tmp_path / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield server
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (the server and the kernels it started), SIGKILL after 15 s."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


async def _run_cells(server: Server, kernel_id: str, sources: list[str]) -> list[list[dict]]:
    """Execute ``sources`` in order over the kernel's websocket; each cell's outputs (stops at an error)."""
    from jupyter_client.session import Session
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws_url = server.url.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
    ws = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {server.token}"}))
    session, results = Session(), []
    try:
        for source in sources:
            msg = session.msg("execute_request", {"code": source, "silent": False, "store_history": True,
                                                  "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
            msg["channel"] = "shell"
            await ws.write_message(json.dumps(msg, default=str))
            outputs, idle, replied = [], False, False
            while not (idle and replied):
                raw = await asyncio.wait_for(ws.read_message(), CELL_S)
                assert raw is not None, "kernel websocket closed"
                reply = json.loads(raw)
                if reply.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                    continue
                kind = reply["msg_type"]
                if kind in ("stream", "display_data", "execute_result", "error"):
                    outputs.append({"type": kind, **reply["content"]})
                idle |= kind == "status" and reply["content"]["execution_state"] == "idle"
                replied |= kind == "execute_reply"
            results.append(outputs)
            if any(o["type"] == "error" for o in outputs):
                break
    finally:
        ws.close()
    return results


def test_lab_lists_notebooks_and_runs_one_in_the_project_kernel(lab):
    start = time.monotonic()
    assert "JupyterLab" in lab.page("/lab")  # the JupyterLab application itself is served
    listing = lab.api("/api/contents/notebooks")
    names = {item["name"] for item in listing["content"]}
    assert {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")} <= names
    specs = lab.api("/api/kernelspecs")
    nb = nbformat.reads(json.dumps(lab.api(f"/api/contents/notebooks/{NOTEBOOK}")["content"]), as_version=4)
    name = nb.metadata.kernelspec.name
    assert name in specs["kernelspecs"], f"kernel {name!r} not installed: run `make setup`"
    assert specs["kernelspecs"][name]["spec"]["display_name"].startswith("vae-report (")  # says which environment
    kernel = lab.api("/api/kernels", "POST", {"name": name})
    try:
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        params = sum(c.cell_type == "code" for c in nb.cells[: params + 1])  # code cells up to the parameters
        sources = [*code[:params], 'profile = "smoke"', *code[params:]]  # as papermill injects parameters
        results = asyncio.run(_run_cells(lab, kernel["id"], sources))
    finally:
        lab.api(f"/api/kernels/{kernel['id']}", "DELETE")
    errors = [o for cell in results for o in cell if o["type"] == "error"]
    assert not errors, f"{errors[0]['ename']}: {errors[0]['evalue']}"
    assert len(results) == len(sources)
    text = "".join(o.get("text", "") for cell in results for o in cell)
    assert "smoke" in text  # the settings it printed
    assert any("image/png" in o.get("data", {}) for cell in results for o in cell), "no figure shown"
    assert Path(os.environ["VAELIB_OUT"], "figures", Path(NOTEBOOK).stem).is_dir()
    assert lab.api("/api/kernels") == []
    print(f"JupyterLab check: {time.monotonic() - start:.1f} s")  # about 8 s on an idle 2-core machine
