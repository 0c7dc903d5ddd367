"""The policy pack: infra/policies.py's plain rules, wrapped for `pulumi preview --policy-pack`.

The rules stay plain functions (tested directly in tests/unit/infra); this file only adapts
pulumi_policy's resources to their simple dict shape and reads the model of the stack being
previewed (its name is in every URN) for what the resources cannot say: the sites and whether
the stack may be indexed. The PolicyPack is built only when run as the pack's main module:
constructing it starts serving gRPC and blocks (DESIGN.md).
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    Policy,
    PolicyPack,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.policies import RULES, PolicyContext, Rule, context_from_stack  # noqa: E402
from model import ConfigErrors, load_stack  # noqa: E402


def plain(value: Any) -> Any:
    """pulumi_policy's proxies (which raise on unknown values) -> plain data; unknowns stay
    as Pulumi's sentinel strings, which the rules treat as "not known yet"."""
    if type(value).__name__.endswith("Proxy"):  # _DictProxy, _ListProxy and secret proxies
        value = value["__target"]
    if type(value).__name__ == "Secret":
        value = value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def as_resources(resources: Sequence[Any]) -> list[dict[str, Any]]:
    """pulumi_policy PolicyResource objects -> the rules' resource dicts."""
    return [{
        "type": r.resource_type,
        "name": r.name,
        "props": plain(r.props),
        "protect": bool(getattr(r.opts, "protect", False)),
        "deps": {k: [d.name for d in v] for k, v in (r.property_dependencies or {}).items()},
    } for r in resources]


def stack_name(resources: Sequence[Any]) -> str | None:
    """`urn:pulumi:<stack>::<project>::...` -> <stack>."""
    for r in resources:
        if r.urn.startswith("urn:pulumi:"):
            return str(r.urn[len("urn:pulumi:"):].split("::", 1)[0])
    return None


def load_context(stack: str | None, root: Path = ROOT) -> PolicyContext:
    if stack is None:
        raise ValueError("no resource in the stack: cannot tell which Pulumi.<stack>.yaml applies")
    return context_from_stack(load_stack(root / f"Pulumi.{stack}.yaml"))


def validation(rule: Rule, root: Path = ROOT
               ) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        try:
            ctx = load_context(stack_name(args.resources), root)
        except (ConfigErrors, ValueError) as exc:
            report_violation(f"cannot read the stack's model: {exc}", None)
            return
        for message in rule.check(as_resources(args.resources), ctx):
            report_violation(message, None)
    return validate


def policies(root: Path = ROOT) -> list[Policy]:
    return [StackValidationPolicy(name=r.name, description=r.description,
                                  validate=validation(r, root),
                                  enforcement_level=EnforcementLevel.MANDATORY) for r in RULES]


if __name__ == "__main__":
    PolicyPack(name="villeparisis-hosting", enforcement_level=EnforcementLevel.MANDATORY,
               policies=policies())
