#!/usr/bin/env bash
# A check by eye (not part of `make test`): JupyterLab, as `make lab` starts it, in headless Chromium, showing an
# executed notebook with its figures. Writes build/screenshots/lab-<notebook>.png.
#   tools/screenshot_lab.sh [NOTEBOOK]   # a path under the project root; default reports/notebooks/01_vae.ipynb
# Needs Debian's chromium (`apt-get install chromium`) and the venv (`make setup`).
set -euo pipefail
cd "$(dirname "$0")/.."
NB=${1:-reports/notebooks/01_vae.ipynb}
[ -f "$NB" ] || { echo "error: $NB: not found; expected a notebook under the project root" >&2; exit 2; }
CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || { echo "error: chromium not found; install it with: apt-get install chromium" >&2; exit 2; }
OUT=build/screenshots; mkdir -p "$OUT"
PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN=$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')
TMP=$(mktemp -d)
setsid .venv/bin/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port="$PORT" --ServerApp.port_retries=0 \
  --IdentityProvider.token="$TOKEN" --ServerApp.root_dir=. --MappingKernelManager.default_kernel_name=vae-report \
  $( [ "$(id -u)" = 0 ] && echo --allow-root ) \
  >"$TMP/lab.log" 2>&1 &
LAB=$!
trap 'kill -TERM -- -$LAB 2>/dev/null || true; wait $LAB 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 120); do
  curl -sf -H "Authorization: token $TOKEN" "http://127.0.0.1:$PORT/api/status" >/dev/null && break
  sleep 0.5
done
SHOT="$OUT/lab-$(basename "${NB%.ipynb}").png"
timeout 300 "$CHROME" --headless --no-sandbox --no-zygote --disable-gpu --disable-dev-shm-usage --disable-extensions --hide-scrollbars --user-data-dir="$TMP/profile" \
  --window-size=1400,1000 --virtual-time-budget=25000 --screenshot="$SHOT" \
  "http://127.0.0.1:$PORT/lab/tree/$NB?token=$TOKEN&reset" 2>"$TMP/chromium.log" || { cat "$TMP/chromium.log" >&2; exit 1; }
echo "wrote $SHOT"
