"""Pure address decisions: web host prefixes, Additional IP blocks, regions."""
from __future__ import annotations

from ipaddress import IPv4Address, ip_network

import pytest

from infra.addressing import block_of, regions, web_prefixes
from infra.public_ips import site_blocks

from .conftest import prod_with, stack_of


def _many_sites(n: int):
    def change(config: dict) -> None:
        config["hosting:network"].update(private_cidr="10.20.0.0/22",
                                         public_ip_blocks=["198.51.100.0/24", "203.0.113.0/25"])
        template = config["hosting:sites"][1]
        config["hosting:sites"] = [
            {**template, "name": f"site{i}", "domain": f"site{i}.villeparisis.fr", "aliases": [],
             "public_ip": f"198.51.100.{i}" if i < 250 else f"203.0.113.{i - 250 + 16}",
             "database": {"name": f"site{i}"}, "host_number": 99 + i} for i in range(1, n + 1)]
    return prod_with(change)


def test_web_prefixes_two_sites_collapse_to_one_exact_slash31():
    assert web_prefixes(stack_of("prod")) == ("10.20.0.100/31",)


def test_web_prefixes_many_sites_cover_exactly_the_web_hosts():
    stack = _many_sites(200)
    covered = {a for p in web_prefixes(stack) for a in ip_network(p)}
    assert covered == {IPv4Address("10.20.0.100") + i for i in range(200)}
    assert len(web_prefixes(stack)) <= 8  # not 200 rules


def test_site_blocks_shared_slash29_gives_one_attachment_for_both_sites():
    assert site_blocks(stack_of("prod")) == {ip_network("198.51.100.16/29"):
                                             ("villeparisis", "participation")}


def test_block_of_address_outside_every_block_raises():
    with pytest.raises(ValueError, match="198.51.100.99 is in no network.public_ip_blocks"):
        block_of(stack_of("prod"), IPv4Address("198.51.100.99"))


def test_regions_main_then_long_term_backup_region():
    assert regions(stack_of("prod")) == ("GRA11", "SBG5")
