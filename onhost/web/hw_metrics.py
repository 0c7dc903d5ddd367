"""The site's live release as textfile metrics for node exporter (issue 13, R-HOST-4).

Written by the web helper after every `release` and `rollback`, whatever their result (the
live release is read from the `current` link, so a failed release that went back reports
the release that serves):

  hosting_site_release_info{site,release,version} 1   the live release and its version
  hosting_site_release_last_success{site}             1/0: the last release or rollback
  hosting_site_release_last_timestamp_seconds{site}   when it ended

The version: the codebase's RELEASE file (the test fixture), else Drupal core's
`Drupal::VERSION` (web/core/lib/Drupal.php, or core/lib/Drupal.php), else the version of
drupal/core in composer.lock, else "unknown".
"""
import json
import os
import re
import time

import textfile

VERSION_CONST = re.compile(r"const\s+VERSION\s*=\s*['\"]([^'\"]{1,64})['\"]")
SAFE = re.compile(r"[A-Za-z0-9._+~:-]{1,64}")


def release_version(release_dir):
    """The codebase's version, from what the release holds (never runs PHP)."""
    try:
        with open(os.path.join(release_dir, "RELEASE")) as f:
            text = f.readline().strip()
        if SAFE.fullmatch(text):
            return text
    except OSError:
        pass
    for rel in ("web/core/lib/Drupal.php", "core/lib/Drupal.php"):
        try:
            with open(os.path.join(release_dir, rel), errors="replace") as f:
                m = VERSION_CONST.search(f.read(200_000))
        except OSError:
            continue
        if m and SAFE.fullmatch(m.group(1)):
            return m.group(1)
    try:
        with open(os.path.join(release_dir, "composer.lock")) as f:
            lock = json.load(f)
        for package in lock.get("packages") or ():
            if package.get("name") == "drupal/core" and SAFE.fullmatch(
                    str(package.get("version", ""))):
                return str(package["version"])
    except (OSError, ValueError, AttributeError):
        pass
    return "unknown"


def live_release(root):
    """(release id, its directory) the `current` link points at, or (None, None)."""
    current = os.path.join(root, "current")
    try:
        target = os.readlink(current)
    except OSError:
        return None, None
    path = target if os.path.isabs(target) else os.path.join(root, target)
    return os.path.basename(target.rstrip("/")), path


def release_metrics(site, root, ok, now=None):
    rid, path = live_release(root)
    out = []
    if rid:
        out.append(("hosting_site_release_info", "The live release of the site and its version.",
                    [({"site": site, "release": rid, "version": release_version(path)}, 1)]))
    out += [("hosting_site_release_last_success",
             "1 if the last release or rollback of the site succeeded, else 0.",
             [({"site": site}, 1 if ok else 0)]),
            ("hosting_site_release_last_timestamp_seconds",
             "When the last release or rollback ended (Unix seconds).",
             [({"site": site}, time.time() if now is None else now)])]
    return out


def write_release(site, root, ok):
    """Write hosting_site_<site>.prom; never raises: None or the warning to print."""
    try:
        return textfile.write_safely(f"hosting_site_{site}.prom",
                                     release_metrics(site, root, ok))
    except Exception as exc:  # noqa: BLE001 -- the release's own result must stand
        return f"release metrics not written: {exc}"
