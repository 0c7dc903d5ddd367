"""Make `backup` and the helpers beside this file importable however pytest is started
(plain `pytest` from a checkout without `pip install -e .`, or --import-mode=importlib)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
for path in (str(REPO), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)
