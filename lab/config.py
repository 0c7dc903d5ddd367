"""Where a lab lives and what it may use: prefix, state directory, address ranges, stack file.

Every name the lab creates on the machine (bridges, veths, network namespaces, nspawn machine
names) starts with the prefix, and the address ranges are configurable, so two labs (a
`make lab` and the test session's) can be up on one machine at once without colliding.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from ipaddress import IPv4Network, ip_network
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PREFIX = "hlab"
# Documentation range for "public" addresses (RFC 5737). A lab range must never hold an address
# the machine itself uses (its uplink, the package mirror, PyPI): lab.network.check_machine_reach
# refuses such ranges when the lab comes up. /26 blocks leave room for a test and a bench lab.
DEFAULT_PUBLIC_CIDR = "198.51.100.0/26"
DEFAULT_PRIVATE_CIDR = "10.77.0.0/24"
FORBIDDEN = ip_network("192.0.2.0/24")
STATE_ROOT = Path("/var/lib/hosting-lab")
# The base image is shared by every lab on the machine: building it is the slow part.
IMAGE_CACHE = Path("/var/cache/hosting-lab/images")
# Bridge "<prefix>-pub" and veth "<prefix>NNpub" must fit IFNAMSIZ (15 characters).
PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,8}")


class LabConfigError(ValueError):
    pass


@dataclass(frozen=True)
class LabConfig:
    prefix: str = DEFAULT_PREFIX
    state_dir: Path = field(default=Path())  # default: STATE_ROOT/<prefix>
    stack_file: Path = REPO_ROOT / "Pulumi.prod.yaml"
    public_cidr: str = DEFAULT_PUBLIC_CIDR
    private_cidr: str = DEFAULT_PRIVATE_CIDR
    image_cache: Path = IMAGE_CACHE
    suite: str = "trixie"
    mirror: str = "http://deb.debian.org/debian"
    apt_proxy_port: int = 3142

    def __post_init__(self) -> None:
        if not PREFIX_RE.fullmatch(self.prefix):
            raise LabConfigError(
                f"prefix {self.prefix!r}: 1-9 characters, a lowercase letter then letters/digits "
                "(it starts interface names, which are limited to 15 characters)")
        if self.state_dir == Path():
            object.__setattr__(self, "state_dir", STATE_ROOT / self.prefix)
        pub, priv = self.public_net, self.private_net
        for name, net in (("public_cidr", pub), ("private_cidr", priv)):
            if net.overlaps(FORBIDDEN):
                raise LabConfigError(f"{name} {net} overlaps {FORBIDDEN}, the machine's uplink")
            if net.prefixlen > 26:
                raise LabConfigError(f"{name} {net} is too small (need at least a /26)")
        if pub.overlaps(priv):
            raise LabConfigError(f"public_cidr {pub} and private_cidr {priv} overlap")

    @property
    def public_net(self) -> IPv4Network:
        return _net(self.public_cidr, "public_cidr")

    @property
    def private_net(self) -> IPv4Network:
        return _net(self.private_cidr, "private_cidr")

    # -- names on the machine ------------------------------------------------------------------
    @property
    def public_bridge(self) -> str:
        return f"{self.prefix}-pub"

    @property
    def private_bridge(self) -> str:
        return f"{self.prefix}-prv"

    def netns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def machine(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def veth(self, index: int, side: str) -> str:
        return f"{self.prefix}{index:02d}{side}"  # side: "pub" | "prv"

    # -- files ---------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.state_dir / "lab.json"

    def to_json(self) -> str:
        data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _net(value: str, name: str) -> IPv4Network:
    try:
        net = ip_network(value, strict=True)
    except ValueError as exc:
        raise LabConfigError(f"{name}: {exc}") from exc
    if not isinstance(net, IPv4Network):
        raise LabConfigError(f"{name} {value}: IPv4 only")
    return net


_ENV = {
    "prefix": "LAB_PREFIX",
    "state_dir": "LAB_STATE_DIR",
    "stack_file": "LAB_STACK",
    "public_cidr": "LAB_PUBLIC_CIDR",
    "private_cidr": "LAB_PRIVATE_CIDR",
    "image_cache": "LAB_IMAGE_CACHE",
}
_PATHS = {"state_dir", "stack_file", "image_cache"}


def load_config(**overrides: str | Path | None) -> LabConfig:
    """Configuration from (in order of precedence) explicit overrides, LAB_* environment
    variables, the lab.json saved by an earlier `up` in the state directory, the defaults.

    The saved file matters: `down` and `status` must act on the lab `up` made, even when run
    with fewer options than `up` was.
    """
    given: dict[str, object] = {}
    for key, env in _ENV.items():
        value = overrides.get(key)
        if value is None:
            value = os.environ.get(env) or None
        if value is not None:
            given[key] = Path(value) if key in _PATHS else str(value)
    base = LabConfig(prefix=str(given.get("prefix", DEFAULT_PREFIX)),
                     state_dir=Path(given.get("state_dir", Path())))  # type: ignore[arg-type]
    saved: dict[str, object] = {}
    if base.config_file.exists():
        raw = json.loads(base.config_file.read_text())
        saved = {k: Path(v) if k in _PATHS else v for k, v in raw.items()
                 if k in LabConfig.__dataclass_fields__}
    merged = {**saved, **given}
    merged.setdefault("state_dir", base.state_dir)
    return replace(LabConfig(), **merged)  # type: ignore[arg-type]
