"""``python -m edge``: the edge service under uvicorn (settings from ``PREPICM_EDGE_*``)."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge", description="PrepICM edge service (docs/edge.md)")
    ap.add_argument("--host", help="override PREPICM_EDGE_HOST")
    ap.add_argument("--port", type=int, help="override PREPICM_EDGE_PORT")
    args = ap.parse_args(argv)

    import uvicorn

    from edge.core.config import EdgeSettings
    from edge.main import create_app

    overrides = {k: v for k, v in (("HOST", args.host), ("PORT", args.port)) if v is not None}
    try:
        settings = EdgeSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        print(f"edge: invalid settings: {'PREPICM_EDGE_' + where + ': ' if where else ''}{first['msg']}",
              file=sys.stderr)
        return 2
    uvicorn.run(create_app(settings), host=settings.HOST, port=settings.PORT, log_level=settings.LOG_LEVEL.lower(),
                workers=1)
    return 0


if __name__ == "__main__":  # guarded: encoder workers are spawned and re-import this module
    sys.exit(main())
