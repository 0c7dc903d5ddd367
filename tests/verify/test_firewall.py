"""nftables: default deny on every host (R-GDPR-6), read from the live ruleset."""
from __future__ import annotations

import json
from typing import Any


def _ruleset(host: Any) -> list[dict[str, Any]]:
    return json.loads(host.check_output("nft -j list ruleset"))["nftables"]


def test_nftables_input_chain_policy_drop(host):
    chains = [x["chain"] for x in _ruleset(host) if "chain" in x]
    inputs = [c for c in chains if c.get("hook") == "input"]
    assert inputs, "no input hook chain"
    assert all(c.get("policy") == "drop" for c in inputs)


def test_nftables_service_enabled_at_boot(host):
    assert host.service("nftables").is_enabled


def test_ip_forwarding_disabled(host):
    assert host.check_output("cat /proc/sys/net/ipv4/ip_forward") == "0"
