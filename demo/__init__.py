"""The main job: the cloud and the edge started locally as processes, sample photos streamed
through them, per-frame results and a summary printed, both services stopped cleanly.

``python -m demo`` (``bash scripts/demo.sh`` installs first). This package starts the services
only as processes (:mod:`demo.services`) and speaks HTTP to them, so it imports neither ``edge``
nor ``cloud``: only ``shared`` and httpx.
"""
