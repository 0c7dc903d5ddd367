"""The Pulumi program for OVHcloud: one environment (stack) from the model, as OVH resources.

`infra.program.build(stack)` registers every resource; `infra/__main__.py` is the thin entry
point Pulumi runs (Pulumi.yaml: `main: infra/`). One module per concern; each keeps its decisions
in small pure functions (plans) that tests and policies read, next to the code that turns them
into resources.
"""
