"""The base image: one Debian 13 root filesystem built by mmdebstrap, cached, read-only.

Every host is an overlayfs above it, so the image is built once per machine (not per lab, not
per host) and kept under a name derived from everything that goes into it: change the package
list or the customisation and a new image is built next to the old one.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localcmd import run

# Lean on purpose: what systemd, sshd, Fabric and testinfra need. Roles install the rest
# through the lab's apt proxy, exactly as they would on a fresh OVH instance.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "iproute2", "nftables",
    "sudo", "ca-certificates", "curl", "procps", "netbase",
    # The monitoring (roles/monitoring, issue 13): in the image so `make lab` does not spend
    # ~20 s more unpacking them on ops, which converges last. Their units are disabled below;
    # the roles enable them where they belong (node exporter everywhere, the rest on ops).
    "prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter",
    "prometheus-node-exporter",
)
# Bump when the customisation below changes meaning (it is part of the cache key).
IMAGE_VERSION = "4"
CUSTOMIZE = [
    # Each lab host gets its own host key and certificate, written at creation: never share
    # the keys openssh-server's postinst generated in the image.
    'rm -f "$1"/etc/ssh/ssh_host_*',
    # An empty machine-id: each host gets its own, written into its upper dir at creation.
    'truncate -s 0 "$1"/etc/machine-id',
    'rm -f "$1"/var/lib/dbus/machine-id',
    # No DNS inside the lab (no route out): apt goes through the proxy by URL.
    'rm -f "$1"/etc/resolv.conf && : > "$1"/etc/resolv.conf',
    # pam_env warns on every login without it (the locales package is not installed).
    'echo LANG=C.UTF-8 > "$1"/etc/default/locale',
    # Units that cannot work in a container without a console or kernel access; masked so
    # `systemctl is-system-running` says "running" (see docs/lab.md).
    'for u in console-getty.service getty@tty1.service systemd-firstboot.service'
    ' systemd-binfmt.service proc-sys-fs-binfmt_misc.automount; do'
    ' ln -sf /dev/null "$1/etc/systemd/system/$u"; done',
    # The monitoring daemons the packages enabled: off until a role wants them on a host.
    'for u in prometheus prometheus-alertmanager prometheus-blackbox-exporter'
    ' prometheus-node-exporter; do rm -f "$1"/etc/systemd/system/*.wants/$u.service; done',
]
# Leave out documentation and translations: smaller image, faster package installs in hosts.
DPKG_OPTS = (
    "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
)


def sources(suite: str, mirror: str) -> str:
    """The image's apt sources, like a cloud image's: the release, its updates, security
    updates (served by deb.debian.org too, through the lab's apt proxy)."""
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    base = mirror.rstrip("/")
    return (f"Types: deb\nURIs: {base}/\nSuites: {suite} {suite}-updates\n"
            f"Components: main\nSigned-By: {keyring}\n\n"
            f"Types: deb\nURIs: {base}-security/\nSuites: {suite}-security\n"
            f"Components: main\nSigned-By: {keyring}\n")


def cache_key(suite: str, mirror: str) -> str:
    recipe = json.dumps([IMAGE_VERSION, suite, mirror, PACKAGES, CUSTOMIZE, DPKG_OPTS,
                         sources(suite, mirror)])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def image_path(cache: Path, suite: str, mirror: str) -> Path:
    return cache / f"{suite}-{cache_key(suite, mirror)}"


def ensure_image(cache: Path, suite: str, mirror: str,
                 log: Path | None = None) -> tuple[Path, float]:
    """Return (path of the image, seconds spent building it: 0.0 when it was cached).

    A lock serialises two labs building at once; the build goes to a temporary directory
    renamed into place only when complete, so an interrupted build never looks cached.
    """
    cache.mkdir(parents=True, exist_ok=True)
    target = image_path(cache, suite, mirror)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "etc/os-release").exists():
            return target, 0.0
        tmp = cache / f".build-{target.name}-{os.getpid()}"
        for stale in cache.glob(f".build-{target.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        start = time.monotonic()
        argv = ["mmdebstrap", "--mode=root", "--variant=minbase", "--format=directory",
                "--include=" + ",".join(PACKAGES), "--skip=cleanup/apt/lists"]
        argv += [f"--dpkgopt={o}" for o in DPKG_OPTS]
        argv += [f"--customize-hook={c}" for c in CUSTOMIZE]
        argv += ["--customize-hook=rm -f \"$1\"/etc/apt/sources.list && printf %s "
                 f"'{sources(suite, mirror)}' > \"$1\"/etc/apt/sources.list.d/debian.sources"]
        argv += [suite, str(tmp), mirror]
        try:
            proc = run(argv, timeout=900)
            if log is not None:
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(proc.stderr)
            (tmp / "etc/lab-image").write_text(json.dumps(
                {"suite": suite, "key": cache_key(suite, mirror)}) + "\n")
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target, time.monotonic() - start


@contextmanager
def using_images(cache: Path) -> Iterator[None]:
    """Held (shared) by a lab `up` from choosing its image until its hosts are mounted on it:
    in that window no mount names the image yet, so no other lab may prune it."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".in-use", "w") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        yield


def prune_images(cache: Path, keep: Path, mountinfo: str | None = None) -> list[str]:
    """Delete the cached images other than `keep` that no mounted host uses (a recipe change
    leaves the old image behind: ~230 MB each). A host sits on its image as an overlay lower
    layer while it exists (`lab down` unmounts and wipes hosts), so an image that no mount
    names is used by no host of any lab on this machine. Skipped (nothing removed) while
    another lab is between choosing its image and mounting it."""
    with open(cache / ".in-use", "w") as in_use:
        try:
            fcntl.flock(in_use, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []
        if mountinfo is None:
            with open("/proc/self/mountinfo") as f:
                mountinfo = f.read()
        removed = []
        with open(cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # not while another lab builds
            for child in sorted(cache.iterdir()):
                if (child.is_dir() and child != keep and (child / "etc/lab-image").exists()
                        and not mounted_on(mountinfo, child)):
                    shutil.rmtree(child, ignore_errors=True)
                    removed.append(child.name)
        return removed


def mounted_on(mountinfo: str, image: Path) -> bool:
    """Whether a mount uses `image`: an overlay whose lowerdir is it, or a mount inside it."""
    lower = re.compile(rf"(^|,)lowerdir={re.escape(str(image))}(,|:|$)")
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and (fields[4] + "/").startswith(f"{image}/"):
            return True
        if any(lower.search(field) for field in fields):
            return True
    return False


def remove_images(cache: Path) -> None:
    """Drop every cached image (bench's cold build; nothing else needs this)."""
    if cache.exists():
        for child in cache.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
