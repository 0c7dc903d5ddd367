"""Mutation proofs of tests/verify/test_sshd.py's checks (issue 17): the check function itself,
fed the `sshd -T` reading of a host that drifted, fails."""
from __future__ import annotations

import pytest

from tests.verify import test_sshd as ts


def test_address_family_check_inet_passes():
    ts.test_sshd_08_address_family_inet({"addressfamily": ["inet"]})


@pytest.mark.parametrize("family", ["inet6", "any"])
def test_address_family_check_other_family_fails(family):
    with pytest.raises(AssertionError):
        ts.test_sshd_08_address_family_inet({"addressfamily": [family]})
