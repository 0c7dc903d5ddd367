from __future__ import annotations

import hw_db
import pytest
from hw_util import HelperError

GOOD = [
    "GRANT USAGE ON *.* TO `villeparisis`@`localhost` IDENTIFIED BY PASSWORD '*AB12'",
    "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE TEMPORARY "
    "TABLES, LOCK TABLES ON `villeparisis`.* TO `villeparisis`@`localhost`",
]


def test_grant_problems_exact_drupal_privileges_ok():
    assert hw_db.grant_problems("villeparisis", "villeparisis", GOOD) == []


def test_grant_problems_missing_user():
    assert hw_db.grant_problems("x", "x", []) == ["user x@localhost does not exist"]


def test_grant_problems_global_privilege_reported():
    lines = [GOOD[0].replace("USAGE", "FILE"), GOOD[1]]
    assert hw_db.grant_problems("villeparisis", "villeparisis", lines) == [
        "villeparisis has global privileges FILE"]


def test_grant_problems_other_database_reported():
    lines = [*GOOD, "GRANT SELECT ON `participation`.* TO `villeparisis`@`localhost`"]
    assert hw_db.grant_problems("villeparisis", "villeparisis", lines) == [
        "villeparisis has grants outside its database: participation.*"]


def test_grant_problems_all_privileges_not_accepted():
    lines = [GOOD[0], "GRANT ALL PRIVILEGES ON `villeparisis`.* TO `villeparisis`@`localhost` "
             "WITH GRANT OPTION"]
    problems = hw_db.grant_problems("villeparisis", "villeparisis", lines)
    assert problems and "ALL PRIVILEGES" in problems[0] and "GRANT OPTION" in problems[0]


@pytest.mark.parametrize("name", ["a'b", "a b", "a;drop", "`x`", ""])
def test_ident_unsafe_names_refused(name):
    with pytest.raises(HelperError, match="unsafe"):
        hw_db._ident(name)
