"""Build the program under Pulumi's unit-test mocks: no engine, no provider plugin, no network.

Used by the unit tests (tests/unit/infra), the benchmark (bench/infra_bench.py) and anyone who
wants to see what a stack would register without OVH credentials. Facts this relies on (found by
trying, DESIGN.md): mock inputs arrive camelCase with ints as floats and secrets still wrapped;
nested state returned must be camelCase; `protect`/`ignore_changes` never reach
`Mocks.new_resource`, so a `MockMonitor` subclass records them from the registration request.

One Pulumi program per process is the rule; here each build resets the root stack resource and
the runtime settings first, so builds run one after another in one process (measured: tens of
milliseconds per stack, against ~1 s for a fresh interpreter importing the providers).
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from model.types import Stack

USER = "ovh:CloudProject/user:User"
NETWORK = "ovh:CloudProject/networkPrivate:NetworkPrivate"
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
INSTANCE = "openstack:compute/instance:Instance"
PORT = "openstack:networking/port:Port"


@dataclass(frozen=True)
class Registered:
    type: str
    name: str
    id: str
    inputs: dict[str, Any]  # camelCase, secrets unwrapped
    state: dict[str, Any]  # what the mock "cloud" returned
    protect: bool
    ignore_changes: tuple[str, ...]
    secret_inputs: frozenset[str]
    provider: str  # provider reference ("" = the default provider)
    deps: dict[str, list[str]]  # input property -> names of the resources it came from
    urn: str = ""  # what Pulumi keys its state by: a changed URN is a delete + create


@dataclass
class MockBuild:
    resources: list[Registered]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str]

    def of_type(self, token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == token]

    def get(self, token: str, name: str) -> Registered:
        found = [r for r in self.of_type(token) if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{token} {name}: {len(found)} registered")
        return found[0]

    def policy_view(self) -> list[dict[str, Any]]:
        """The resources as the plain policy functions take them (infra/policies.py)."""
        return [{"type": r.type, "name": r.name, "props": r.state, "protect": r.protect,
                 "deps": r.deps} for r in self.resources]


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def _unwrap(value: Any) -> Any:
    if _is_secret(value):
        return _unwrap(value["value"])
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _ed25519() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(s.Encoding.PEM, s.PrivateFormat.OpenSSH, s.NoEncryption())
    public = key.public_key().public_bytes(s.Encoding.OpenSSH, s.PublicFormat.OpenSSH)
    return private.decode(), public.decode() + "\n"


class HostingMocks(mocks.Mocks):
    """A fake cloud: echoes inputs as state and computes what the real providers would."""

    def __init__(self) -> None:
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}
        self._public: dict[str, str] = {}  # instance name -> its Ext-Net address
        self._ports: dict[str, dict[str, Any]] = {}  # port id -> its inputs

    def _public_ip(self, name: str) -> str:
        """A documentation-range address (203.0.113.100-249) chosen by the instance's name, not
        by registration order (which varies between runs): two builds of one host agree, so
        builds can be compared input by input (tests/unit/infra/test_infra_stable_addresses)."""
        if name not in self._public:
            used = set(self._public.values())
            n = zlib.crc32(name.encode()) % 150
            while f"203.0.113.{100 + n}" in used:
                n = (n + 1) % 150
            self._public[name] = f"203.0.113.{100 + n}"
        return self._public[name]

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = _unwrap(args.inputs)
        self.inputs[(args.typ, args.name)] = inputs
        state = dict(inputs)
        if args.typ == USER:
            state.update(username=f"user-{args.name}", password="mock-password", status="ok")
        elif args.typ == NETWORK:
            state["regionsOpenstackIds"] = {r: f"os-net-{r}" for r in inputs.get("regions", [])}
        elif args.typ == PRIVATE_KEY:
            private, public = _ed25519()
            state.update(privateKeyOpenssh=private, publicKeyOpenssh=public)
        elif args.typ == PORT:
            fixed = inputs.get("fixedIps", [])
            state.update(allFixedIps=[f["ipAddress"] for f in fixed if "ipAddress" in f],
                         macAddress=f"fa:16:3e:{zlib.crc32(args.name.encode()) & 0xffffff:06x}")
            self._ports[f"{args.name}-id"] = inputs
        elif args.typ == INSTANCE:
            nets = [dict(n) for n in inputs.get("networks", [])]
            for n in nets:
                if n.get("name") == "Ext-Net":
                    n["fixedIpV4"] = self._public_ip(args.name)
                elif n.get("port") in self._ports:  # as the provider reads a port back
                    port = self._ports[n["port"]]
                    n["uuid"] = port.get("networkId")
                    n["fixedIpV4"] = port["fixedIps"][0].get("ipAddress")
            state.update(networks=nets, accessIpV4=nets[0].get("fixedIpV4") if nets else None)
        return f"{args.name}-id", state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None  # the program makes no provider calls


@dataclass(frozen=True)
class _Options:
    protect: bool
    ignore_changes: tuple[str, ...]
    secret_inputs: frozenset[str]
    provider: str
    deps: dict[str, list[str]]


class RecordingMonitor(mocks.MockMonitor):
    """Records what the mocks never see: protect, ignore_changes, secret inputs, dependencies."""

    def __init__(self, m: HostingMocks) -> None:
        super().__init__(m)
        self.options: dict[str, _Options] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            secret = frozenset(k for k, v in request.object.fields.items()
                               if v.HasField("struct_value") and rpc._special_sig_key
                               in v.struct_value.fields)
            deps = {k: [u.rsplit("::", 1)[-1] for u in v.urns]
                    for k, v in request.propertyDependencies.items()}
            self.options[response.urn] = _Options(bool(request.protect),
                                                  tuple(request.ignoreChanges), secret,
                                                  request.provider, deps)
        return response


def build_under_mocks(stack: Stack, build: Callable[[Stack], None] | None = None,
                      project: str = "hosting") -> MockBuild:
    """Run `build(stack)` (default: infra.program.build) against the mocks; return what it
    registered and exported. Exceptions raised inside `.apply()` propagate."""
    if build is None:
        from infra.program import build as build_program
        build = build_program
    fake = HostingMocks()
    monitor = RecordingMonitor(fake)
    settings.ROOT.set(None)  # a fresh root Stack resource for this build
    pulumi.runtime.set_mocks(fake, project=project, stack=stack.environment, preview=False,
                             monitor=monitor)
    settings.SETTINGS.outputs.clear()

    program = build

    async def run() -> None:
        program(stack)
        await wait_for_rpcs()

    _sync_await(run())
    root = settings.get_root_resource()
    exported = dict(root.outputs) if root is not None else {}  # type: ignore[attr-defined]
    values = {k: _sync_await(pulumi.Output.from_input(v).future()) for k, v in exported.items()}
    secret = frozenset(k for k, v in exported.items()
                       if _sync_await(pulumi.Output.from_input(v).is_secret()))
    resources = []
    for urn, reg in monitor.get_registered_resources().items():
        if urn not in monitor.options:
            continue
        typ, name = urn.split("::")[-2].split("$")[-1], urn.split("::")[-1]
        o = monitor.options[urn]
        resources.append(Registered(typ, name, reg.id, fake.inputs.get((typ, name), {}),
                                    _unwrap(reg.state), o.protect, o.ignore_changes,
                                    o.secret_inputs, o.provider, o.deps, urn))
    return MockBuild(resources, values, secret)
