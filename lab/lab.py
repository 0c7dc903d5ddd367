"""The lab as a whole: `up` (re-entrant: repairs what is missing, changes nothing else),
`down` (removes everything the lab made, even after a crash half-way through `up`), status."""
from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import localcmd
from lab import antispoof, cgroups, mail_sink, network, procs, tls
from lab.aptproxy import AptProxy
from lab.config import LabConfig
from lab.containers import Container, mounted
from lab.image import ensure_image, prune_images, using_images
from lab.inventory import dump, inventory_document, known_hosts, ssh_config, write_if_changed
from lab.limits import ensure_inotify_instances
from lab.plan import LabHost, LabPlan, make_plan
from lab.trust import LabTrust
from model.bootstrap import bootstrap_commands, bootstrap_files

APT_CONF = "/etc/apt/apt.conf.d/00lab-proxy"


@dataclass
class UpReport:
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a host whose systemd is degraded
    image_seconds: float = 0.0
    hosts_seconds: float = 0.0
    total_seconds: float = 0.0


@dataclass
class Leftovers:
    processes: list[int]
    mounts: list[str]
    netns: list[str]
    links: list[str]
    cgroups: list[str]
    nft_tables: list[str] = field(default_factory=list)  # anti-spoofing tables (lab.antispoof)

    def empty(self) -> bool:
        return not (self.processes or self.mounts or self.netns or self.links or self.cgroups
                    or self.nft_tables)

    def __str__(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.__dict__.items() if v) or "nothing"


class Lab:
    def __init__(self, cfg: LabConfig, log: Callable[[str], None] = lambda _m: None) -> None:
        self.cfg = cfg
        self.log = log
        self.trust = LabTrust(cfg.state_dir, cfg.prefix)
        self.apt = AptProxy(cfg.state_dir, cfg.private_net.network_address + 1,
                            cfg.apt_proxy_port, cfg.mirror)

    # -- files handed to users -----------------------------------------------------------------
    @property
    def inventory_path(self) -> Path:
        return self.cfg.state_dir / "inventory.json"

    @property
    def ssh_config_path(self) -> Path:
        return self.cfg.state_dir / "ssh_config"

    @property
    def known_hosts_path(self) -> Path:
        return self.cfg.state_dir / "known_hosts"

    @property
    def tls_dir(self) -> Path:
        """The lab's TLS CA and the proxy's certificate (lab.tls), named in the inventory."""
        return self.cfg.state_dir / "tls"

    def plan(self) -> LabPlan:
        return make_plan(self.cfg, self.trust.ca_public("user_ca"), self.trust.ca_public("host_ca"))

    def container(self, name: str) -> Container:
        return Container(self.cfg.state_dir, name, self.cfg.machine(name), self.cfg.netns(name))

    def port_index(self, name: str) -> int:
        """The number in the host's veth names, fixed when the host is created: adding a site
        to the stack must not rename (and so restart) the hosts that already exist."""
        return int((self.container(name).dir / "index").read_text())

    def _allocate_indices(self, plan: LabPlan) -> None:
        used = set()
        for name in self.host_dirs():
            try:
                used.add(self.port_index(name))
            except (OSError, ValueError):
                pass
        for h in plan.hosts:
            f = self.container(h.name).dir / "index"
            if not f.exists():
                index = min(set(range(90)) - used)  # 90+: test probes (lab.testing.Probe)
                used.add(index)
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text(f"{index}\n")

    def ports(self, plan: LabPlan, h: LabHost) -> tuple[network.Port, ...]:
        pub, priv = self.cfg.public_net, self.cfg.private_net
        index = self.port_index(h.name)
        ports = []
        if h.public_ip is not None:
            address = network.IPv4Interface(f"{h.public_ip}/{pub.prefixlen}")
            ports.append(network.Port(self.cfg.public_bridge, self.cfg.veth(index, "pub"),
                                      "pub0", address, h.site_ips))
        ports.append(network.Port(self.cfg.private_bridge, self.cfg.veth(index, "prv"), "priv0",
                                  network.IPv4Interface(f"{h.private_ip}/{priv.prefixlen}")))
        return tuple(ports)

    @contextmanager
    def _locked(self, create: bool = True) -> Iterator[None]:
        """One `up` or `down` at a time per lab (`down` of a lab never made creates nothing)."""
        if not create and not self.cfg.state_dir.exists():
            yield
            return
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.cfg.state_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # -- up ------------------------------------------------------------------------------------
    def up(self) -> UpReport:
        if os.geteuid() != 0:
            raise PermissionError("the lab needs root (network namespaces, mounts, nspawn)")
        report = UpReport()
        start = time.monotonic()
        with self._locked():
            self._check_ranges()
            self._save_config(report)
            raised = ensure_inotify_instances()
            if raised:
                report.changes.append(raised)
            with using_images(self.cfg.image_cache):  # until our hosts sit on it
                image, report.image_seconds = ensure_image(
                    self.cfg.image_cache, self.cfg.suite, self.cfg.mirror,
                    log=self.cfg.state_dir / "image-build.log")
                if report.image_seconds:
                    report.changes.append(f"built base image {image.name} "
                                          f"({report.image_seconds:.0f}s)")
                if self.trust.ensure_cas():
                    report.changes.append("created lab user CA and host CA")
                plan = self.plan()
                self._network(plan, report)
                if self.apt.ensure():
                    report.changes.append(f"started apt proxy on {self.apt.url}")
                planned = {h.name for h in plan.hosts}
                for name in self.host_dirs():
                    if name not in planned:  # a site left the stack: its host goes too
                        self._destroy_host(self.container(name), ())
                        report.changes.append(f"{name}: removed (no longer in the stack)")
                self._allocate_indices(plan)
                t0 = time.monotonic()
                with ThreadPoolExecutor(max_workers=len(plan.hosts)) as pool:
                    results = list(pool.map(lambda h: self._ensure_host(plan, h, image),
                                            plan.hosts))
            report.hosts_seconds = time.monotonic() - t0
            for old in prune_images(self.cfg.image_cache, image):
                report.changes.append(f"removed unused base image {old}")
            fingerprints = {}
            for name, fp, changes, warnings in results:
                fingerprints[name] = fp
                report.changes += changes
                report.warnings += warnings
            self._write_access(plan, fingerprints, report)
        report.total_seconds = time.monotonic() - start
        return report

    def _save_config(self, report: UpReport) -> None:
        saved = self.cfg.config_file
        # Another stack file is fine on a running lab (hosts are added and removed to match);
        # other names or ranges are not: the running hosts use the old ones.
        if saved.exists() and _live_fields(saved.read_text()) != _live_fields(self.cfg.to_json()):
            if not self.leftovers().empty():
                raise RuntimeError(f"lab {self.cfg.prefix} is up with another configuration "
                                   f"({saved}); run `python -m lab down` first")
        if write_if_changed(saved, self.cfg.to_json()):
            report.changes.append(f"saved configuration {saved}")

    def _check_ranges(self) -> None:
        """Before anything is made: the ranges must not cut the machine off what it uses, nor
        overlap another lab's or the uplink's."""
        ranges = (self.cfg.public_net, self.cfg.private_net)
        network.check_machine_reach(ranges, urlsplit(self.cfg.mirror).hostname or "")
        network.check_no_collision(ranges, set(network.lab_links(self.cfg.prefix)))

    def _network(self, plan: LabPlan, report: UpReport) -> None:
        if network.ensure_bridge(self.cfg.public_bridge, plan.machine_public):
            report.changes.append(f"bridge {self.cfg.public_bridge} {plan.machine_public}")
        if network.ensure_bridge(self.cfg.private_bridge, plan.machine_private):
            report.changes.append(f"bridge {self.cfg.private_bridge} {plan.machine_private}")

    def _ensure_host(self, plan: LabPlan, h: LabHost,
                     image: Path) -> tuple[str, str, list[str], list[str]]:
        c = self.container(h.name)
        ports = self.ports(plan, h)
        changes: list[str] = []
        warnings: list[str] = []
        if c.exists():
            # A host stays on the image it was built on while that image is cached: a new
            # image recipe must not wipe the hosts of a lab someone is working in.
            built_on = Path(json.loads(c.created_marker.read_text())["image"])
            if (built_on / "etc/os-release").exists():
                image = built_on
            else:
                self._destroy_host(c, ports)
                changes.append(f"{h.name}: rebuilt (its base image {built_on.name} is gone)")
        elif (c.dir / "upper").exists():
            self._destroy_host(c, ports)  # half-made by an interrupted `up`: start afresh
            changes.append(f"{h.name}: removed a half-made host")
        stamp = json.dumps({"image": str(image)})
        new = not c.exists()
        if c.mount(image) and not new:
            changes.append(f"{h.name}: mounted its root")
        fp = self.trust.ensure_host_key(c.host_key, h.name, h.cert_principals)
        if new:
            self._first_boot_files(plan, h, c)
        net_state = network.host_network_state(self.cfg.netns(h.name), ports)
        if net_state == "addresses":
            network.sync_addresses(self.cfg.netns(h.name), ports)
            changes.append(f"{h.name}: addresses now {', '.join(str(p.address.ip) for p in ports)}"
                           f"{''.join(', ' + str(a) for p in ports for a in p.extra)}")
        elif net_state == "broken":
            if c.supervisor_pid() is not None:
                c.stop()  # its namespace is gone or wrong: it must start again in a new one
            network.create_host_network(self.cfg.netns(h.name), ports)
            if not new:
                changes.append(f"{h.name}: re-created its network namespace")
        if c.start() and not new:
            changes.append(f"{h.name}: started")
        if c.wait_booted() != "running":
            failed = c.exec(["systemctl", "--failed", "--no-legend", "--plain"], check=False)
            units = ", ".join(line.split()[0] for line in failed.stdout.splitlines() if line)
            warnings.append(f"{h.name}: systemd is degraded (failed: {units or '?'})")
        if new:
            # cloud-init's runcmd: once, at first boot, after the files are written.
            for argv in bootstrap_commands(plan.stack, h.plan):
                c.exec(list(argv))
            if h.plan.role == "ops":
                c.exec(mail_sink.enable_argv())
            c.created_marker.write_text(stamp)
            changes.append(f"{h.name}: created ({h.private_ip}"
                           f"{', ' + str(h.public_ip) if h.public_ip else ''})")
        # From inside the host: once deployed, its firewall lets only the bastion reach :22.
        wait_ssh_inside(c, timeout=30)
        return h.name, fp, changes, warnings

    def _destroy_host(self, c: Container, ports: tuple[network.Port, ...]) -> None:
        """Stop and delete a host, keeping its port index (its veth names) for the rebuild."""
        index = c.dir / "index"
        kept = index.read_text() if index.exists() else None
        c.stop()
        c.unmount()
        network.delete_host_network(c.netns, ports)
        c.wipe()
        if kept is not None and ports:
            c.dir.mkdir(parents=True, exist_ok=True)
            index.write_text(kept)

    def _first_boot_files(self, plan: LabPlan, h: LabHost, c: Container) -> None:
        key = c.host_key
        files = bootstrap_files(
            plan.stack, h.plan, host_key_private=key.read_text(),
            host_key_public=key.with_name(key.name + ".pub").read_text(),
            host_certificate=key.with_name(key.name + "-cert.pub").read_text())
        for f in files:
            c.write_file(f.path, f.content, f.mode, f.owner)
        # The lab's own files, not the model's: what OVH's image and network give a VM.
        c.write_file(APT_CONF, self.apt.apt_conf(), 0o644)
        c.write_file("/etc/machine-id", secrets.token_hex(16) + "\n", 0o444)
        c.write_file("/etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{h.name}\n"
                     "::1\tlocalhost ip6-localhost ip6-loopback\n", 0o644)
        if h.plan.role == "ops":  # the outside world's mail server, for the alert emails
            for path, content, mode in mail_sink.files():
                c.write_file(path, content, mode)

    def _write_access(self, plan: LabPlan, fingerprints: dict[str, str],
                      report: UpReport) -> None:
        stack = plan.stack
        principals = ["sysadmin"] if "sysadmin" in dict(stack.ssh.principals) else [
            stack.ssh.principals[0][0]]
        if self.trust.ensure_user_cert(principals, timedelta(hours=stack.ssh.user_cert_ttl_hours)):
            report.changes.append(f"signed user certificate {self.trust.user_cert} "
                                  f"({', '.join(principals)}, {stack.ssh.user_cert_ttl_hours}h)")
        doc = inventory_document(plan, fingerprints, ca_dir=self.trust.dir,
                                 identity=self.trust.user_key, tls_dir=self.tls_dir)
        written = [
            write_if_changed(self.known_hosts_path, known_hosts(self.trust.host_ca_pub)),
            write_if_changed(self.ssh_config_path, ssh_config(
                doc, known_hosts=self.known_hosts_path, user_key=self.trust.user_key,
                user_cert=self.trust.user_cert)),
            write_if_changed(self.inventory_path, dump(doc)),
        ]
        if any(written):
            report.changes.append("wrote inventory.json, ssh_config, known_hosts")

    def renew_user_cert(self) -> None:
        stack = self.plan().stack
        principals = ["sysadmin"] if "sysadmin" in dict(stack.ssh.principals) else [
            stack.ssh.principals[0][0]]
        self.trust.ensure_user_cert(principals, timedelta(hours=stack.ssh.user_cert_ttl_hours))

    def refresh_credentials(self) -> None:
        """Before the inventory is handed out (`python -m lab inventory`): the user certificate
        (8 hours) renewed when near expiry, the proxy's TLS certificate re-issued when near
        expiry or no longer covering the inventory's sites. A deploy then only reads them."""
        self.renew_user_cert()
        tls.ensure_for_inventory(self.tls_dir, json.loads(self.inventory_path.read_text()))

    # -- down ----------------------------------------------------------------------------------
    def host_dirs(self) -> list[str]:
        hosts = self.cfg.state_dir / "hosts"
        return sorted(p.name for p in hosts.iterdir() if p.is_dir()) if hosts.exists() else []

    def down(self, purge: bool = False) -> Leftovers:
        """Remove everything the lab made. Works from the machine's state alone (PID files,
        names with the prefix, mounts under the state directory), never from the stack file,
        so a broken config or an `up` killed half-way cannot block it."""
        with self._locked(create=False):
            containers = [self.container(n) for n in self.host_dirs()]
            with ThreadPoolExecutor(max_workers=max(1, len(containers))) as pool:
                list(pool.map(lambda c: c.stop(), containers))
            self.apt.stop()
            stray = procs.lab_processes(self.cfg.state_dir)
            if stray:
                procs.terminate(stray, 10)
            for mount in reversed(self._mounts()):
                if not localcmd.ok(["umount", mount]):
                    localcmd.run(["umount", "-l", mount], check=False)
            for ns in network.lab_netns(self.cfg.prefix):
                network.delete_host_network(ns)
            for link in network.lab_links(self.cfg.prefix):
                network.delete_link(link)
            antispoof.remove_lab(self.cfg.prefix)  # also the tables of namespaces already gone
            for cg in cgroups.lab_cgroups(self.cfg.prefix):
                cgroups.remove(Path(cg).name)
            for c in containers:
                if not mounted(c.root):
                    c.wipe()
            for f in (self.inventory_path, self.ssh_config_path, self.known_hosts_path):
                f.unlink(missing_ok=True)
            left = self.leftovers()
            if purge and left.empty():
                shutil.rmtree(self.cfg.state_dir, ignore_errors=True)
        return left

    def _mounts(self) -> list[str]:
        marker = str(self.cfg.state_dir).rstrip("/") + "/"
        with open("/proc/self/mountinfo") as f:
            return [line.split()[4] for line in f if line.split()[4].startswith(marker)]

    def leftovers(self) -> Leftovers:
        """What of this lab exists on the machine now (all empty after `down`)."""
        return Leftovers(
            processes=procs.lab_processes(self.cfg.state_dir),
            mounts=self._mounts(),
            netns=network.lab_netns(self.cfg.prefix),
            links=network.lab_links(self.cfg.prefix),
            cgroups=cgroups.lab_cgroups(self.cfg.prefix),
            nft_tables=antispoof.tables(self.cfg.prefix),
        )

    # -- using it ------------------------------------------------------------------------------
    def ssh_argv(self, host: str, command: Sequence[str] = ()) -> list[str]:
        return ["ssh", "-F", str(self.ssh_config_path), host, *command]

    def ssh(self, host: str, command: str, *, timeout: float = 120,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a shell command on a host through the generated ssh_config (as the login user)."""
        return localcmd.run(self.ssh_argv(host, [command]), timeout=timeout, check=check)


def _live_fields(config_json: str) -> dict[str, object]:
    data = json.loads(config_json)
    data.pop("stack_file", None)
    return data


_BANNER_PROBE = ("import socket; s = socket.create_connection(('127.0.0.1', 22), 1); "
                 "s.settimeout(2); assert s.recv(4).startswith(b'SSH-')")


def wait_ssh_inside(c: Container, timeout: float) -> None:
    """sshd answers its banner on the host's loopback (whatever the host's firewall says)."""
    deadline = time.monotonic() + timeout
    while c.exec(["python3", "-c", _BANNER_PROBE], check=False, timeout=10).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{c.name}: sshd did not answer with a banner in {timeout}s")
        time.sleep(0.2)

