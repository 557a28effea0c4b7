#!/usr/bin/env bash
# One-command set-up: system packages (when root), a virtualenv in .venv, the package and its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # Fashion-MNIST (a data set in MNIST's layout, used by the data tests) and Chromium (browser tests).
  need=""
  for pkg in dataset-fashion-mnist chromium; do dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"; done
  if [ -n "$need" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# torch first and pinned: anything that asks for plain "torch" must not pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,onnx,serve,keras]"
echo "set up: activate with '. .venv/bin/activate', then run 'digits --help'"
