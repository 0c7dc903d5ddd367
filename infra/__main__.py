"""Entry point Pulumi runs (Pulumi.yaml `main: infra/`): load this stack's model, build it.

Kept thin on purpose: everything testable lives in `infra.program.build`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pulumi

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # Pulumi runs this directory as a script, not as a package
    sys.path.insert(0, str(ROOT))

from infra.program import build  # noqa: E402
from model import load_stack  # noqa: E402

# The model reads the stack file itself (plain YAML; `secure:` provider values are not needed),
# and stops with every configuration error at once, naming file and field.
build(load_stack(ROOT / f"Pulumi.{pulumi.get_stack()}.yaml"))
