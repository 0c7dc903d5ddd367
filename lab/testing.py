"""A lab for test sessions: bring one up, hand tests what they need, tear it down.

tests/lab/conftest.py wraps this in a session-scoped pytest fixture; other test suites that
need real hosts (roles, verification) can do the same. The test lab has its own prefix and
ranges (LAB_TEST_* to change them), so it runs beside a `make lab` without colliding.
"""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import localcmd
from lab.config import REPO_ROOT, STATE_ROOT, LabConfig
from lab.lab import Lab, Leftovers, UpReport

TEST_PREFIX = os.environ.get("LAB_TEST_PREFIX", "hlabt")
TEST_PUBLIC_CIDR = os.environ.get("LAB_TEST_PUBLIC_CIDR", "198.51.100.64/26")
TEST_PRIVATE_CIDR = os.environ.get("LAB_TEST_PRIVATE_CIDR", "10.79.0.0/24")


def lab_test_config(**overrides: Any) -> LabConfig:
    values: dict[str, Any] = dict(
        prefix=TEST_PREFIX, public_cidr=TEST_PUBLIC_CIDR, private_cidr=TEST_PRIVATE_CIDR)
    values.update(overrides)
    # A second lab (another prefix) must never share the first one's state directory.
    values.setdefault("state_dir", STATE_ROOT / values["prefix"])
    return LabConfig(**values)


def planned_hosts(stack_file: Path = REPO_ROOT / "Pulumi.prod.yaml") -> list[tuple[str, str, bool]]:
    """(name, role, public) of every host the stack plans, known before any lab is up: what
    tests parametrize over."""
    from model import load_stack
    from model.topology import plan_hosts

    return [(h.name, h.role, h.public) for h in plan_hosts(load_stack(stack_file))]


@dataclass
class LabSession:
    """What a test gets: the lab, the files it wrote, and ways to run commands on hosts."""
    lab: Lab
    up_report: UpReport | None = None
    is_down: bool = False
    _inventory: dict[str, Any] | None = field(default=None, repr=False)

    # -- files ---------------------------------------------------------------------------------
    @property
    def inventory_path(self) -> Path:
        return self.lab.inventory_path

    @property
    def ssh_config(self) -> Path:
        return self.lab.ssh_config_path

    @property
    def known_hosts(self) -> Path:
        return self.lab.known_hosts_path

    @property
    def user_key(self) -> Path:
        return self.lab.trust.user_key

    @property
    def user_cert(self) -> Path:
        return self.lab.trust.user_cert

    @property
    def host_ca_pub(self) -> Path:
        return self.lab.trust.host_ca_pub

    @property
    def inventory(self) -> dict[str, Any]:
        if self._inventory is None:
            self._inventory = json.loads(self.inventory_path.read_text())
        return self._inventory

    @property
    def hosts(self) -> list[str]:
        return [h["name"] for h in self.inventory["hosts"]]

    def host(self, name: str) -> dict[str, Any]:
        for h in self.inventory["hosts"]:
            if h["name"] == name:
                return h
        raise KeyError(name)

    def hosts_with_role(self, *roles: str) -> list[str]:
        return [h["name"] for h in self.inventory["hosts"] if h["role"] in roles]

    # -- running things --------------------------------------------------------------------------
    def run(self, host: str, command: str, *, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """A shell command on `host` as the login user, over SSH through the bastion (the
        path roles and people use). check=True raises with the host's stderr on failure."""
        proc = self.lab.ssh(host, command, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{host}: `{command}` exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def sudo(self, host: str, command: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run(host, f"sudo -n sh -c {_quote(command)}", **kwargs)

    def root_exec(self, host: str, argv: list[str], *, check: bool = True, timeout: float = 120,
                  input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run as root inside the host without SSH (set-up for tests that attack SSH)."""
        return self.lab.container(host).exec(argv, check=check, timeout=timeout, input=input)

    def testinfra_host(self, host: str) -> Any:
        """A testinfra host over its ssh:// backend with the lab's ssh_config."""
        import testinfra

        return testinfra.get_host(f"ssh://{host}", ssh_config=str(self.ssh_config))

    def fabric_connection(self, host: str) -> Any:
        """A Fabric connection that verifies host certificates (sshtrust.hostkey), through
        the bastion for every host but the bastion itself."""
        from sshtrust.hostkey import make_connection

        def connect(name: str, gateway: Any = None) -> Any:
            h = self.host(name)
            return make_connection(
                h["public_ip"] if gateway is None else h["private_ip"],
                self.inventory["ssh"]["login_user"], host_ca_pub=self.host_ca_pub,
                expected_name=name, user_key=self.user_key, user_cert=self.user_cert,
                gateway=gateway)

        bastion = self.inventory["bastion"]
        if host == bastion:
            return connect(host)
        return connect(host, gateway=connect(bastion))

    # -- lifecycle -------------------------------------------------------------------------------
    def ensure_up(self) -> None:
        if self.is_down:
            self.up_report = self.lab.up()
            self.is_down = False
            self._inventory = None

    def down(self) -> Leftovers:
        self.is_down = True
        self._inventory = None
        return self.lab.down()


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


@contextmanager
def lab_session(cfg: LabConfig | None = None) -> Iterator[LabSession]:
    """Bring a lab up (tearing down whatever an earlier, crashed run left), yield it, and tear
    it down whatever happens; raise if the teardown left anything behind."""
    lab = Lab(cfg or lab_test_config())
    lab.down()
    session = LabSession(lab)
    try:
        session.up_report = lab.up()
        yield session
    finally:
        left = lab.down()
        if not left.empty():
            raise RuntimeError(f"lab teardown left: {left}")


class Probe:
    """A bare network namespace on one lab bridge: "a client on the internet" (public side) or
    "another machine in the vRack" (private side). Its ports use the lab's naming scheme
    (indices 90+), so `lab down` removes a probe a failed test left behind."""

    def __init__(self, lab: Lab, side: str, host_offset: int, index: int = 90) -> None:
        from ipaddress import IPv4Interface

        from lab import network

        cfg = lab.cfg
        net = cfg.public_net if side == "pub" else cfg.private_net
        self.address = IPv4Interface(f"{net.network_address + host_offset}/{net.prefixlen}")
        self.ns = cfg.netns(f"probe{index}")
        bridge = cfg.public_bridge if side == "pub" else cfg.private_bridge
        self.port = network.Port(bridge, cfg.veth(index, side), "eth0", self.address)
        self._network = network

    def __enter__(self) -> Probe:
        self._network.create_host_network(self.ns, (self.port,))
        return self

    def __exit__(self, *_exc: object) -> None:
        self._network.delete_host_network(self.ns, (self.port,))

    def run(self, argv: list[str], *, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command from this namespace (its source address is the probe's)."""
        return localcmd.run(["ip", "netns", "exec", self.ns, *argv], timeout=timeout,
                            input=input, check=False)

    def route_on_link(self, cidr: str) -> None:
        """Pretend the other network is on this wire: what an attacker next to it could try."""
        localcmd.run(["ip", "-n", self.ns, "route", "add", cidr, "dev", "eth0"])

    def tcp_open(self, targets: list[tuple[str, int]], timeout: float = 2.0) -> dict[str, bool]:
        """Connect to each (address, port) from inside the namespace, in parallel."""
        code = (
            "import json,socket,sys,concurrent.futures as f\n"
            "def probe(t):\n"
            " s=socket.socket(); s.settimeout(float(sys.argv[2]))\n"
            " try: return s.connect_ex((t[0],t[1]))==0\n"
            " except OSError: return False\n"
            " finally: s.close()\n"
            "ts=json.loads(sys.argv[1])\n"
            "with f.ThreadPoolExecutor(len(ts) or 1) as p: r=list(p.map(probe,ts))\n"
            "print(json.dumps({f'{a}:{b}':x for (a,b),x in zip(ts,r)}))\n")
        out = localcmd.run(["ip", "netns", "exec", self.ns, "python3", "-c", code,
                            json.dumps(targets), str(timeout)], timeout=timeout + 30).stdout
        return json.loads(out)


@contextmanager
def lab_env(session: LabSession) -> Iterator[None]:
    """Point `--env lab` (the LAB_* variables read by fab and roles) at this session's lab."""
    cfg = session.lab.cfg
    wanted = {"LAB_PREFIX": cfg.prefix, "LAB_STATE_DIR": str(cfg.state_dir)}
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
