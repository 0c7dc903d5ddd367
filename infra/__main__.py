"""Entry point Pulumi runs (Pulumi.yaml `main: infra/`): load this stack's model, build it.

Kept thin on purpose: everything testable lives in `infra.program.build`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pulumi

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Pulumi runs this directory as a script: its own folder lands first on sys.path, where
# infra/dns.py would shadow dnspython's `dns` for any library importing it. Import the modules
# as the `infra` package from the project root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra.program import build  # noqa: E402
from model import load_stack  # noqa: E402

# The model reads the stack file itself (plain YAML; `secure:` provider values are not needed),
# and stops with every configuration error at once, naming file and field.
build(load_stack(ROOT / f"Pulumi.{pulumi.get_stack()}.yaml"))
