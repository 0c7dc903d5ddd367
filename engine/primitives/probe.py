"""The `Probe` primitive: a read-only command whose output must equal a record kept on the host
(the live nftables ruleset vs. the listing recorded when it was last applied; the sockets nginx
listens on vs. those its configuration names).

It stays apart from `Check` on purpose: what it compares is a whole listing, and --check shows
the difference as a diff (a rule added by hand, a flushed ruleset), which an exit status could
not carry; and its repair is a handler that a File of the same role also notifies (reload the
ruleset once, whichever of the two saw the change).

Facts: the command's output and the record's content. Decision: an action notifying the
handlers when they differ. On-host op: `notify`: it changes nothing itself and reports
`changed`, so the handlers it notifies (the repair) run.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from engine.facts import CommandFact, FactRequest, HostFacts, PathFact
from engine.primitives.common import Action, Decision

OPS = ("notify",)


@dataclass(frozen=True)
class Probe:
    name: str
    argv: tuple[str, ...]
    expect_from: str  # path of a file on the host holding the expected output
    notify: tuple[str, ...] = ()
    summary: str = ""

    @property
    def key(self) -> str:
        return f"probe:{self.name}"


RESOURCE = Probe


def request(r: Probe, check: bool) -> FactRequest:
    # The record is read in every mode: the decision compares its content.
    return FactRequest(paths=(r.expect_from,), contents=(r.expect_from,),
                       commands=((r.name, r.argv),))


def decide_probe(r: Probe, out: CommandFact | None, expected: PathFact) -> Decision:
    live = (out.out if out else "").strip()
    want = (expected.data or b"").decode("utf-8", "replace").strip() if expected.exists else ""
    if out is not None and out.rc == 0 and expected.exists and live == want:
        return []
    why = "no record of the last apply" if not expected.exists else "live state differs"
    diff = "".join(difflib.unified_diff(
        (live + "\n").splitlines(keepends=True), (want + "\n").splitlines(keepends=True),
        fromfile=f"{r.name} (live)", tofile=f"{r.name} (as last applied: {r.expect_from})"))
    return [Action(r.key, r.summary or f"{r.name}: {why}", {"kind": "notify"}, diff, r.notify)]


def decide(r: Probe, facts: HostFacts) -> Decision:
    return decide_probe(r, facts.commands.get(r.name), facts.path(r.expect_from))
