"""Textfile metrics of the backups for node exporter (issue 13, R-HOST-4; docs/monitoring.md).

Node exporter's textfile collector reads every `*.prom` file of its directory (Debian:
/var/lib/prometheus/node-exporter) at each scrape. The code that knows the facts writes them:

  web host   backup.run, after every run (also a failed one, also on an unexpected
             exception): hosting_backup_<site>.prom, for the local tier and the pushes to
             A and B (what the run saw of them);
  storage    backup.rotate, as the site's storage user, writes metrics.prom into its own
             state directory; the unit's privileged ExecStopPost (`python3 -m backup.metrics
             publish`) checks it (only this site's and tier's backup metrics) and installs it
             as hosting_backup_<site>_<tier>.prom: the storage user never writes outside its
             own directories.

Metrics (labels site, tier = local|a|b):
  hosting_backup_last_snapshot_timestamp_seconds   newest backup (not a safety snapshot)
  hosting_backup_last_run_success                  1/0: the last run (local), the last push (a/b)
  hosting_backup_last_run_timestamp_seconds        when that run ended
  hosting_backup_last_run_duration_seconds         its duration (a/b: the copy step)
  hosting_backup_repository_check_success          1/0: the last `restic check` (storage)
  hosting_backup_repository_check_timestamp_seconds
  hosting_backup_repository_size_bytes             bytes on disk (local: web host; a/b: storage)
  hosting_backup_rotation_success                  1/0: the last forget+prune (storage)
  hosting_backup_snapshots                         snapshots kept in the tier
  hosting_backup_suspect_snapshots                 suspect in the storage ledger (issue 19)
  hosting_backup_unexpected_keys                   repository keys nobody recorded (issue 19)
  hosting_backup_quota_bytes                       the site's space limit there (issue 19)

Every file is written atomically: a temporary file in the same directory (its name does not
end in .prom, so the collector skips it), fsync, rename, fsync of the directory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # Debian's default for the collector
ENV_DIR = "HOSTING_TEXTFILE_DIR"  # tests: another directory
METRICS_FILE = "metrics.prom"  # a storage run's metrics, in its state directory
STORAGE_CONFIG_DIR = "/etc/hosting/backup-storage"

HELP = {
    "hosting_backup_last_snapshot_timestamp_seconds":
        "Time of the newest backup in the tier (Unix seconds).",
    "hosting_backup_last_run_success":
        "1 if the last backup run (local) or push to the tier (a, b) succeeded, else 0.",
    "hosting_backup_last_run_timestamp_seconds": "When the last run ended (Unix seconds).",
    "hosting_backup_last_run_duration_seconds": "Duration of the last run (a, b: its copy).",
    "hosting_backup_repository_check_success": "1 if the last restic check passed, else 0.",
    "hosting_backup_repository_check_timestamp_seconds":
        "When the last restic check ended (Unix seconds).",
    "hosting_backup_repository_size_bytes": "Bytes on disk of the tier's repository.",
    "hosting_backup_rotation_success": "1 if the last forget and prune succeeded, else 0.",
    "hosting_backup_snapshots": "Backups kept in the tier (safety snapshots not counted).",
    "hosting_backup_suspect_snapshots":
        "Snapshots the storage server's ledger holds suspect (backup.suspect, issue 19).",
    "hosting_backup_unexpected_keys":
        "Repository keys that neither backup.setup nor backup.contain made (issue 19).",
    "hosting_backup_quota_bytes": "The site's space limit on this storage server (bytes).",
}
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass
class Metrics:
    """Samples grouped by metric, rendered in the text exposition format (HELP, TYPE gauge)."""

    samples: list[Sample] = field(default_factory=list)

    def add(self, name: str, value: float | int | bool | None, **labels: str) -> None:
        if value is None:
            return
        self.samples.append(Sample(name, dict(labels), float(value)))

    def render(self, help_texts: Mapping[str, str] = HELP) -> str:
        return render(self.samples, help_texts)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def render(samples: Iterable[Sample], help_texts: Mapping[str, str] = HELP) -> str:
    """The exposition format: each metric's samples together, after its HELP and TYPE."""
    by_name: dict[str, list[Sample]] = {}
    for s in samples:
        if not NAME.fullmatch(s.name):
            raise ValueError(f"metric name {s.name!r} is not valid")
        for key in s.labels:
            if not LABEL.fullmatch(key) or key.startswith("__"):
                raise ValueError(f"label name {key!r} of {s.name} is not valid")
        by_name.setdefault(s.name, []).append(s)
    lines = []
    for name in sorted(by_name):
        text = help_texts.get(name, name).replace("\\", "\\\\").replace("\n", " ")
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
        seen = set()
        for s in by_name[name]:
            labels = ",".join(f'{k}="{escape(str(v))}"' for k, v in sorted(s.labels.items()))
            if labels in seen:
                raise ValueError(f"{name}{{{labels}}} given twice")
            seen.add(labels)
            lines.append(f"{name}{{{labels}}} {_number(s.value)}" if labels
                         else f"{name} {_number(s.value)}")
    return "\n".join(lines) + "\n" if lines else ""


def textfile_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or TEXTFILE_DIR)


def ensure_dir(directory: Path) -> None:
    """Create the collector's directory when missing, as Debian's package does (root, 0755:
    node exporter, user prometheus, reads it); an existing one is left as it is."""
    if not directory.is_dir():
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(directory, 0o755)


def write_textfile(path: str | Path, text: str) -> Path:
    """Replace `path` atomically: temporary file beside it, fsync, rename, fsync the dir."""
    path = Path(path)
    if not path.name.endswith(".prom"):
        raise ValueError(f"{path}: the collector reads only *.prom files")
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return path


def parse_text(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of an exposition text, {(name, sorted labels): value} (tests, publish)."""
    out = {}
    sample = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)')
    pair = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for n, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        m = sample.fullmatch(line)
        if not m:
            raise ValueError(f"line {n}: not a sample")
        raw = m.group(2) or ""
        pairs = pair.findall(raw)
        if ",".join(f'{k}="{v}"' for k, v in pairs) != raw.rstrip(","):
            raise ValueError(f"line {n}: bad labels")
        labels = tuple(sorted(pairs))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


# -- the backups' facts -------------------------------------------------------------------

def timestamp(text: str | None) -> float | None:
    """Unix seconds of an ISO/restic time ("...Z", offsets, nanoseconds), None if absent."""
    if not text:
        return None
    t = text.strip().replace("Z", "+00:00")
    m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)", t)
    if m:  # Python reads at most 6 fraction digits; restic writes 9
        t = m.group(1) + (m.group(2) or "")[:7] + m.group(3)
    moment = datetime.fromisoformat(t)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _newest(picture: Mapping[str, Any]) -> float | None:
    newest = picture.get("newest") or {}
    return timestamp(newest.get("time")) if isinstance(newest, Mapping) else None


def runner_metrics(site: str, status: Mapping[str, Any]) -> Metrics:
    """The web host's view after a run, from its merged status.json (backup.status): every
    tier keeps its newest backup's time even when this run could not reach it."""
    m = Metrics()
    run = status.get("last_run") or {}
    tiers = status.get("tiers") or {}
    ended = timestamp(run.get("finished"))
    steps = run.get("steps") or {}
    for tier, picture in sorted(tiers.items()):
        if not isinstance(picture, Mapping) or tier not in ("local", "a", "b"):
            continue
        labels = {"site": site, "tier": tier}
        m.add("hosting_backup_last_snapshot_timestamp_seconds", _newest(picture), **labels)
        m.add("hosting_backup_snapshots", picture.get("snapshots"), **labels)
        if tier == "local":
            # The run's local part (its copies are the a/b series): tiers.local.ok.
            m.add("hosting_backup_last_run_success",
                  bool(picture.get("ok", run.get("result") == "ok")), **labels)
            m.add("hosting_backup_last_run_timestamp_seconds", ended, **labels)
            m.add("hosting_backup_last_run_duration_seconds", run.get("seconds"), **labels)
            m.add("hosting_backup_repository_size_bytes", picture.get("bytes"), **labels)
        else:
            step = steps.get(f"copy to {tier}")
            if step is None:  # not tried by the last run (--local-only): its last known state
                when = picture.get("failed") or picture.get("seen")
                m.add("hosting_backup_last_run_success", bool(picture.get("ok", False)),
                      **labels)
                m.add("hosting_backup_last_run_timestamp_seconds", timestamp(when), **labels)
                continue
            m.add("hosting_backup_last_run_success", bool(step.get("ok")), **labels)
            m.add("hosting_backup_last_run_timestamp_seconds", ended, **labels)
            m.add("hosting_backup_last_run_duration_seconds", step.get("seconds"), **labels)
    return m


def runner_failed(site: str, status: Mapping[str, Any], seconds: float,
                  now: float | None = None) -> Metrics:
    """A run that ended in an unexpected exception: the last known pictures of the tiers,
    and a failed local run now (BackupFailed fires; BackupStale still sees the old times)."""
    m = runner_metrics(site, {**status, "last_run": {}})
    now = time_now() if now is None else now
    kept = [s for s in m.samples if not (s.labels.get("tier") == "local" and s.name in (
        "hosting_backup_last_run_success", "hosting_backup_last_run_timestamp_seconds",
        "hosting_backup_last_run_duration_seconds"))]
    m.samples = kept
    labels = {"site": site, "tier": "local"}
    m.add("hosting_backup_last_run_success", 0, **labels)
    m.add("hosting_backup_last_run_timestamp_seconds", now, **labels)
    m.add("hosting_backup_last_run_duration_seconds", round(seconds, 3), **labels)
    return m


def storage_metrics(site: str, tier: str, record: Mapping[str, Any],
                    picture: Mapping[str, Any] | None, previous: Mapping[str, Any]) -> Metrics:
    """A storage server's rotation/check run: check result, size, newest backup, rotation.
    `previous` is the tier's status.json picture before this run (a check-only run keeps the
    sizes the last rotation measured)."""
    m = Metrics()
    labels = {"site": site, "tier": tier}
    steps = record.get("steps") or {}
    ended = timestamp(record.get("finished"))
    picture = picture or previous or {}
    m.add("hosting_backup_last_snapshot_timestamp_seconds", _newest(picture), **labels)
    m.add("hosting_backup_snapshots", picture.get("snapshots"), **labels)
    m.add("hosting_backup_repository_size_bytes", picture.get("bytes"), **labels)
    m.add("hosting_backup_suspect_snapshots", picture.get("suspect"), **labels)
    m.add("hosting_backup_unexpected_keys", picture.get("unexpected_keys"), **labels)
    m.add("hosting_backup_quota_bytes", picture.get("quota_bytes"), **labels)
    if "check" in steps:
        m.add("hosting_backup_repository_check_success", bool(steps["check"].get("ok")),
              **labels)
        m.add("hosting_backup_repository_check_timestamp_seconds", ended, **labels)
    if "forget and prune" in steps or record.get("kind") == "rotate":
        rotated = not [e for e in record.get("errors") or () if e.startswith("rotation")]
        m.add("hosting_backup_rotation_success", rotated and "forget and prune" in steps
              and bool(steps["forget and prune"].get("ok")), **labels)
    return m


def time_now() -> float:
    return datetime.now(UTC).timestamp()


def runner_file(site: str) -> Path:
    return textfile_dir() / f"hosting_backup_{site}.prom"


def storage_file(site: str, tier: str) -> Path:
    return textfile_dir() / f"hosting_backup_{site}_{tier}.prom"


def write_safely(path: Path, metrics: Metrics) -> str | None:
    """Write; never raise (monitoring must not fail a backup): the error, or None."""
    try:
        write_textfile(path, metrics.render())
    except (OSError, ValueError) as error:
        return f"metrics not written to {path}: {error}"
    return None


# -- publish: the storage side's privileged step --------------------------------------------

def check_publishable(text: str, site: str, tier: str) -> str:
    """The text as it will be installed, if it holds only this site's and tier's backup
    metrics (a storage user cannot pass anything else to node exporter)."""
    samples = parse_text(text)
    wanted = (("site", site), ("tier", tier))
    out = Metrics()
    for (name, labels), value in samples.items():
        if name not in HELP:
            raise ValueError(f"{name}: not a backup metric")
        if labels != wanted:
            raise ValueError(f"{name}{dict(labels)}: labels must be exactly site={site}, "
                             f"tier={tier}")
        out.add(name, value, site=site, tier=tier)
    return out.render()


def publish(site: str, config_dir: str | Path = STORAGE_CONFIG_DIR) -> Path:
    """Install the storage run's metrics of `site` (tier and state directory from its
    rotation config, root's file) for node exporter, after checking them."""
    config = json.loads((Path(config_dir) / f"{site}.json").read_text())
    tier, state_dir = config["tier"], config["state_dir"]
    if config.get("site") != site or tier not in ("a", "b"):
        raise ValueError(f"{config_dir}/{site}.json: not the storage config of {site}")
    if (Path(config_dir) / "purge" / f"{site}.json").exists():
        # Decommissioned (backup/decommission.py, R-GDPR-8): its backups only wait for their
        # purge and no longer receive any; no metrics, so no BackupStale for a year.
        storage_file(site, tier).unlink(missing_ok=True)
        raise FileNotFoundError(f"{site} is decommissioned: its metrics are withdrawn")
    source = Path(state_dir) / METRICS_FILE
    # Written by the storage user: never follow a link it left there (root reads this).
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError(f"{source}: not a regular file")
        data = f.read(64 * 1024 + 1)
    if len(data) > 64 * 1024:
        raise ValueError(f"{source}: more than 64 KiB, more than a backup's metrics")
    text = data.decode("utf-8")
    return write_textfile(storage_file(site, tier), check_publishable(text, site, tier))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m backup.metrics")
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("publish", help="install a storage run's metrics for node exporter "
                       "(run as root by the rotation unit's ExecStopPost)")
    q.add_argument("--site", required=True)
    q.add_argument("--config-dir", default=STORAGE_CONFIG_DIR)
    args = p.parse_args(argv)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", args.site):
        print(f"publish: --site {args.site!r} is not a site name", file=sys.stderr)
        return 2
    try:
        path = publish(args.site, args.config_dir)
    except FileNotFoundError as error:
        print(f"publish {args.site}: nothing to publish ({error})", file=sys.stderr)
        return 0
    except (OSError, ValueError, KeyError) as error:
        print(f"publish {args.site}: REFUSED: {error}", file=sys.stderr)
        return 1
    print(f"publish {args.site}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
