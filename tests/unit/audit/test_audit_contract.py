"""The contract file and its ids (R-GDPR-10: the audit checks every clause)."""
from __future__ import annotations

from pathlib import Path

import pytest

from audit.contract import CONTRACT, ContractError, load, parse, short

SHARED = Path(__file__).resolve().parents[4] / "shared" / "contract" / "REQUIREMENTS.md"


def test_load_vendored_contract_has_34_unique_ids() -> None:
    clauses = load()
    ids = [c.id for c in clauses]
    assert len(ids) == 34 and len(set(ids)) == 34
    assert ids[0] == "R-SCOPE-1" and "R-INC-3" in ids and ids[-1] == "R-DATA-1"
    assert {c.section for c in clauses} >= {"Scope (§1)", "Hosting (§3)"}


@pytest.mark.skipif(not SHARED.is_file(), reason="no shared contract beside the repository")
def test_load_vendored_copy_same_clauses_as_shared_contract() -> None:
    """docs/contract/REQUIREMENTS.md is a copy: it fails here when the shared file changes."""
    assert [(c.id, c.demand) for c in load(SHARED)] == [(c.id, c.demand) for c in load()]
    assert SHARED.read_text() == CONTRACT.read_text()


def test_parse_duplicate_id_raises_naming_the_line() -> None:
    text = "## A\n| R-X-1 | one | v |\n| R-X-1 | two | v |\n"
    with pytest.raises(ContractError, match=r"c.md:3: clause id R-X-1 already on line 2"):
        parse(text, "c.md")


def test_parse_no_clause_row_raises() -> None:
    with pytest.raises(ContractError, match="no clause row"):
        parse("# nothing\n| id | demand | verified by |\n", "c.md")


def test_parse_empty_demand_raises_naming_the_id() -> None:
    with pytest.raises(ContractError, match="R-X-2 has no demand"):
        parse("| R-X-2 |  | v |\n", "c.md")


def test_short_long_demand_cut_without_backticks() -> None:
    clause = parse("| R-X-1 | `a` " + "b" * 200 + " | v |\n")[0]
    text = short(clause, 40)
    assert len(text) == 40 and text.endswith("…") and "`" not in text
