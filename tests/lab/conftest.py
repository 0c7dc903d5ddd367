"""One lab for the whole test session (tests marked `lab`): up at the first test that needs
it, down at the end, with its own prefix and ranges (lab.testing) so a `make lab` can stay up."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.testing import LabSession, lab_session

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def lab_session_() -> Iterator[LabSession]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (make test runs the lab tests as root)")
    with lab_session() as session:
        yield session


@pytest.fixture
def lab(lab_session_: LabSession) -> LabSession:
    """The session's lab, up (brought up again if a teardown test took it down)."""
    lab_session_.ensure_up()
    return lab_session_


# The lab's own tests check the lab as `up` makes it: they run before tests that deploy roles
# onto the shared hosts (firewalls, hardened sshd); the decommission test deletes a site, after
# every test that uses both; the teardown tests take the lab down: last.
LAB_OWN = ("test_ssh.py", "test_isolation.py", "test_system.py", "test_lifecycle.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def order(item: pytest.Item) -> int:
        if item.path.parent != HERE:
            return 1
        name = item.path.name
        if name in LAB_OWN:
            return 0
        if name == "test_deploy.py":  # expects hosts fresh from first boot; rebuilds them after
            return 1
        if name == "test_decommission.py":  # deletes a site of the shared lab: after the rest
            return 3
        return 4 if name == "test_teardown.py" else 2

    items.sort(key=order)
