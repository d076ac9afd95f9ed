#!/usr/bin/env bash
# A check by eye (not part of `make test`): the book that `make book` built, in headless Chromium: its index page
# and one chapter. Writes build/screenshots/book-index.png and book-<chapter>.png.
#   tools/screenshot_book.sh [CHAPTER]   # an executed notebook's stem; default 01_vae
# Needs Debian's chromium (`apt-get install chromium`) and build/book (`make book`).
set -euo pipefail
cd "$(dirname "$0")/.."
CHAPTER=${1:-01_vae}
BOOK=$PWD/build/book
[ -f "$BOOK/index.html" ] || { echo "error: $BOOK/index.html: not found; run make book first" >&2; exit 2; }
PAGE="$BOOK/reports/notebooks/$CHAPTER.html"
[ -f "$PAGE" ] || { echo "error: $PAGE: not found; expected a chapter stem such as 01_vae" >&2; exit 2; }
CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || { echo "error: chromium not found; install it with: apt-get install chromium" >&2; exit 2; }
OUT=build/screenshots; mkdir -p "$OUT"
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
for pair in "index|$BOOK/index.html" "$CHAPTER|$PAGE"; do
  name=${pair%%|*}; url=file://${pair#*|}
  timeout 300 "$CHROME" --headless --no-sandbox --no-zygote --disable-gpu --disable-dev-shm-usage --disable-extensions --hide-scrollbars --user-data-dir="$TMP/profile" \
    --window-size=1400,1800 --virtual-time-budget=5000 --screenshot="$OUT/book-$name.png" "$url" 2>"$TMP/log" \
    || { cat "$TMP/log" >&2; exit 1; }
  echo "wrote $OUT/book-$name.png"
done
