#!/usr/bin/env python
"""An nbops model service: one exported model version, served over HTTP on its own.

This file is copied into every export as ``serve.py``, next to ``runtime/`` (the
service, a copy of ``nbops/serving/runtime``); neither imports nbops::

    python serve.py --port 8000                               # the HTTP service
    PORT=8080 python serve.py --host 0.0.0.0 --workers 2      # as a container runs it
    python serve.py predict --input in.csv --output out.csv   # batch scoring

See ``python serve.py --help`` and docs/deployment.md.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from runtime.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(here=HERE))
