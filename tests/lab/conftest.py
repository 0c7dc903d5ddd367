"""One lab for the whole test session (tests marked `lab`): up at the first test that needs
it, down at the end, with its own prefix and ranges (lab.testing) so a `make lab` can stay up."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lab.testing import LabSession, lab_session


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Teardown tests take the session's lab down: run them after everything else.
    items.sort(key=lambda item: item.path.name == "test_teardown.py")
