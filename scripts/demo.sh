#!/usr/bin/env bash
# Install (if needed) and run the main job on embedded defaults: start the cloud and the edge
# locally as processes (free loopback ports, temporary SQLite database and spool, a generated
# token), stream sample photos (../shared/data/kodak when present, else photos shipped inside
# installed packages) through the edge with the shipped NPP (plain BPG while none is shipped),
# print per-frame results and a summary, and stop both services.
# Options pass through, e.g.: bash scripts/demo.sh --images DIR --frames 4 --cameras 2
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m demo "$@"
