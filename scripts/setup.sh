#!/usr/bin/env bash
# Set-up on a fresh machine: a virtual environment with DocQA installed (CPU build of torch).
# With --dev, also the test tools, Debian's Chromium for the browser test, strace and ip for
# the no-outbound-connection test and podman for the container test. Tesseract (OCR) in both.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install -q -e ".[dev]"
  if [ ! -x /usr/bin/chromium ] || ! command -v strace >/dev/null || ! command -v ip >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    # strace and ip: tests/test_no_outbound.py traces DocQA's starts in a network namespace.
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium strace iproute2 >/dev/null
  fi
  if ! command -v podman >/dev/null || ! command -v runc >/dev/null \
      || ! command -v debootstrap >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    # tests/test_container.py builds and runs the image: podman with runc, and debootstrap for
    # a Debian base where no registry serves one.
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq podman runc debootstrap >/dev/null
  fi
else
  .venv/bin/python -m pip install -q -e .
fi
# OCR of scanned PDFs and images (indexer/formats/ocr.py): Debian's Tesseract with English.
if ! command -v tesseract >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq tesseract-ocr tesseract-ocr-eng \
      >/dev/null; } || echo "warning: tesseract-ocr not installed: scans and images cannot be indexed" >&2
fi
