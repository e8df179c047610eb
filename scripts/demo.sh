#!/usr/bin/env bash
# Install (if needed) and run the main job on embedded defaults: encode and decode sample photos
# (../shared/data/kodak when present, else photos shipped inside installed packages) through every
# available codec and print a bpp / PSNR / MS-SSIM / time table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/prepicm bench --quick --limit 4 --out results/demo "$@"
