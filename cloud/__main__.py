"""``python -m cloud``: the cloud service under uvicorn, configured by ``PREPICM_CLOUD_*``."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from cloud.core.config import CloudSettings
from cloud.main import create_app


def _one_line(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())


def main() -> int:
    try:
        settings = CloudSettings()
    except ValidationError as exc:
        print(f"cloud: invalid settings: {_one_line(exc)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.LOG_LEVEL.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.HOST, port=settings.PORT, log_level=settings.LOG_LEVEL.lower())
    return 0


if __name__ == "__main__":
    sys.exit(main())
