"""Textfile metrics for node exporter, written by on-host code (issue 13). Standard library
only: shipped with the update check (/usr/local/lib/hosting/metrics/, roles/monitoring/
updates.py) and, as a sibling module, with the web helper (onhost/web/textfile.py is a link to
this file; roles/web copies onhost/web/*.py).

Node exporter's textfile collector (Debian: /var/lib/prometheus/node-exporter) reads every
`*.prom` file at each scrape. A file is replaced atomically: a temporary file in the same
directory (not ending in .prom, so never read half-written), fsync, rename, fsync the directory.
The backup runner has its own copy of this (backup/metrics.py): each on-host package stays
self-contained.
"""
import math
import os
import re
import tempfile

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # Debian's default for the collector
ENV_DIR = "HOSTING_TEXTFILE_DIR"  # tests: another directory
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def textfile_dir():
    return os.environ.get(ENV_DIR) or TEXTFILE_DIR


def escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def number(value):
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def render(metrics):
    """`metrics`: [(name, help, [(labels dict, value), ...])] -> the exposition format (gauges)."""
    lines = []
    for name, help_text, samples in metrics:
        if not NAME.fullmatch(name):
            raise ValueError(f"metric name {name!r} is not valid")
        if not samples:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for labels, value in samples:
            for key in labels:
                if not LABEL.fullmatch(key) or key.startswith("__"):
                    raise ValueError(f"label name {key!r} of {name} is not valid")
            inner = ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{inner}}} {number(value)}" if inner
                         else f"{name} {number(value)}")
    return "\n".join(lines) + "\n" if lines else ""


def ensure_dir(directory):
    """Create the collector's directory when missing, as Debian's package does (root, 0755);
    an existing one is left as it is."""
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755, exist_ok=True)
        os.chmod(directory, 0o755)


def write(path, text):
    """Replace `path` (a *.prom file) atomically; returns the path."""
    if not path.endswith(".prom"):
        raise ValueError(f"{path}: the collector reads only *.prom files")
    directory = os.path.dirname(path) or "."
    ensure_dir(directory)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return path


def write_safely(name, metrics):
    """Write <textfile dir>/<name>; never raise (monitoring must not fail the work that
    reports to it): None, or the error to print."""
    path = os.path.join(textfile_dir(), name)
    try:
        write(path, render(metrics))
    except (OSError, ValueError) as exc:
        return f"metrics not written to {path}: {exc}"
    return None
