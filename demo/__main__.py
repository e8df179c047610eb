"""``python -m demo`` (see :mod:`demo.main`)."""

from __future__ import annotations

import sys

from demo.main import main

if __name__ == "__main__":
    sys.exit(main())
