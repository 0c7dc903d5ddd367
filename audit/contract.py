"""The contract's clause ids (R-GDPR-10: an audit that checks every clause).

The contract file is `docs/contract/REQUIREMENTS.md` (a copy of the shared contract, so the
repository and CI carry it; tests/unit/audit/test_contract.py fails when the two differ).
Each clause is a table row `| R-XXX-N | demand | verified by |` under a `## section` title.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "docs" / "contract" / "REQUIREMENTS.md"
ROW = re.compile(r"^\|\s*(R-[A-Z]+-\d+)\s*\|(.*)\|(.*)\|\s*$")
ID = re.compile(r"^R-[A-Z]+-\d+$")


class ContractError(ValueError):
    pass


@dataclass(frozen=True)
class Clause:
    id: str
    section: str
    demand: str
    verified_by: str


def parse(text: str, where: str = "contract") -> list[Clause]:
    """Every clause row, in the file's order; ContractError on a duplicate id or an empty
    demand (naming the line)."""
    out: list[Clause] = []
    seen: dict[str, int] = {}
    section = ""
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        m = ROW.match(line)
        if not m:
            continue
        cid, demand, verified = m.group(1), m.group(2).strip(), m.group(3).strip()
        if cid in seen:
            raise ContractError(f"{where}:{n}: clause id {cid} already on line {seen[cid]}")
        if not demand:
            raise ContractError(f"{where}:{n}: clause {cid} has no demand")
        seen[cid] = n
        out.append(Clause(cid, section, demand, verified))
    if not out:
        raise ContractError(f"{where}: no clause row (| R-XXX-N | demand | verified by |)")
    return out


def load(path: Path | None = None) -> list[Clause]:
    p = Path(path or CONTRACT)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ContractError(f"cannot read the contract {p}: {exc}") from exc
    return parse(text, str(p))


def short(clause: Clause, width: int = 90) -> str:
    """The demand in short, without Markdown backticks."""
    text = clause.demand.replace("`", "")
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"
