#!/usr/bin/env bash
# Create or refresh .venv/ at the repository root with minis2l and everything it needs.
#
# Idempotent and cheap when nothing changed: the venv records a hash of pyproject.toml,
# requirements-lock.txt and this script, and is rebuilt only when that hash differs.
# Usage: scripts/bootstrap.sh [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
STAMP="$VENV/.minis2l-bootstrap"
HASH="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements-lock.txt" "$ROOT/scripts/bootstrap.sh" \
    "$ROOT/docs/package-lock.json" | sha256sum | cut -d' ' -f1)"

# The website's npm packages count as set up when present, or when there is no npm to install them.
NPM_OK=1
if command -v npm >/dev/null && [[ ! -d "$ROOT/docs/node_modules" ]]; then NPM_OK=0; fi
if [[ "${1:-}" != "--force" && -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" && -x "$VENV/bin/python" \
    && "$NPM_OK" == 1 ]]; then
    exit 0
fi

echo "[bootstrap] setting up $VENV (this takes a few minutes the first time)"
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PY" -m venv "$VENV"
fi
rm -f "$STAMP"
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install --disable-pip-version-check --no-input)
LOCK=(-c "$ROOT/requirements-lock.txt")

"${PIP[@]}" --upgrade "pip>=24" "setuptools>=68" wheel

# 1. torch first, pinned: an unpinned torch can pull a multi-GB CUDA build.
#    To use a GPU, install the CUDA build of the same version into .venv beforehand
#    (see README, "Running on a GPU"); this step then keeps it.
"${PIP[@]}" "${LOCK[@]}" "torch==2.13.0"

# 2. torchsort is source-only and must be compiled against the installed torch, so no build
#    isolation. Its setup.py compiles a CUDA extension whenever nvcc is on PATH, which fails
#    against a CPU build of torch: hide nvcc unless torch itself was built with CUDA.
if ! "$VPY" -c "import torchsort" 2>/dev/null; then
    TORCH_CUDA="$("$VPY" -c 'import torch; print(torch.version.cuda or "")')"
    BUILD_PATH="$PATH"
    if [[ -z "$TORCH_CUDA" ]]; then
        BUILD_PATH="$(echo "$PATH" | tr ':' '\n' | while read -r d; do
            [[ -n "$d" && ! -x "$d/nvcc" ]] && echo "$d"; done | paste -sd: -)"
        echo "[bootstrap] torch is a CPU build: building torchsort without CUDA"
    fi
    PATH="$BUILD_PATH" CUDA_HOME="" "${PIP[@]}" "${LOCK[@]}" --no-build-isolation "torchsort>=0.1.10,<0.2"
fi

# 3. tinysoundfont declares pyaudio, which needs portaudio headers to build; offline
#    rendering (all minis2l uses) does not need it.
"${PIP[@]}" "${LOCK[@]}" --no-deps "tinysoundfont>=0.3.6,<0.4"

# 4. Everything else, then minis2l itself in editable mode without dependency resolution
#    (the resolver would otherwise insist on tinysoundfont's pyaudio).
mapfile -t DEPS < <("$VPY" - "$ROOT/pyproject.toml" <<'PYEOF'
import re, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
skip = {"torch", "torchsort", "tinysoundfont"}
extras = project["optional-dependencies"]
for req in project["dependencies"] + extras["test"] + extras["site"]:
    if re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0].lower() not in skip:
        print(req)
PYEOF
)
"${PIP[@]}" "${LOCK[@]}" "${DEPS[@]}" || {
    echo "[bootstrap] pip install failed; see the messages above and README 'Troubleshooting'" >&2
    exit 1
}
"${PIP[@]}" --no-deps -e "$ROOT"

# 5. The course website's JavaScript (the widget renderer and MathJax), pinned in
#    docs/package-lock.json and copied into the site when it is built, so that no page loads
#    anything from another host. npm reaches the registry here, at setup, never at run time.
#    Without npm (and no apt-get to install it) everything but `make site` still works.
if ! command -v npm >/dev/null && command -v apt-get >/dev/null; then
    SUDO=""
    if [[ "$(id -u)" -ne 0 ]] && sudo -n true 2>/dev/null; then SUDO="sudo -n"; fi
    if [[ "$(id -u)" -eq 0 || -n "$SUDO" ]]; then
        echo "[bootstrap] installing Node.js's npm with apt-get (for the course website)"
        $SUDO apt-get update -qq >/dev/null 2>&1
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null 2>&1 \
            || echo "[bootstrap] apt-get install nodejs npm failed"
    fi
fi
if command -v npm >/dev/null; then
    npm ci --prefix "$ROOT/docs" --no-audit --no-fund --loglevel=error
else
    echo "[bootstrap] skipping the course website's JavaScript: npm is missing (install Node.js," \
        "then run: npm ci --prefix docs); everything but make site works without it" >&2
fi

echo "$HASH" > "$STAMP"
echo "[bootstrap] ready: $VENV"
