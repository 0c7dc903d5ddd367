"""onhost/metrics/apt_security.py (issue 13, R-INC-2): security upgrades found in real
`apt-get --simulate` output, the "pending since" time kept while any stays, the metrics."""
from __future__ import annotations

import apt_security
import textfile

from backup.metrics import parse_text

# apt-get --simulate dist-upgrade on Debian 13 (trixie), security and point-release upgrades.
SIMULATION = """\
Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  libssl3t64 openssl tzdata
3 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst libssl3t64 [3.5.1-1] (3.5.1-1+deb13u1 Debian-Security:13/stable-security [amd64])
Inst openssl [3.5.1-1] (3.5.1-1+deb13u1 Debian-Security:13/stable-security [amd64]) []
Inst tzdata [2025b-4] (2025b-4+deb13u1 Debian:13.2/stable [all])
Inst linux-image-amd64 [6.12.38-1] (6.12.41-1 Debian:13.2/stable, """ \
    """Debian-Security:13/stable-security [amd64])
Conf libssl3t64 (3.5.1-1+deb13u1 Debian-Security:13/stable-security [amd64])
Conf openssl (3.5.1-1+deb13u1 Debian-Security:13/stable-security [amd64])
Conf tzdata (2025b-4+deb13u1 Debian:13.2/stable [all])
"""


def test_security_upgrades_only_security_origin_counted_once() -> None:
    assert apt_security.security_upgrades(SIMULATION) == [
        "libssl3t64", "linux-image-amd64", "openssl"]


def test_security_upgrades_nothing_pending_empty() -> None:
    assert apt_security.security_upgrades(
        "Reading package lists...\n0 upgraded, 0 newly installed.\n") == []


def test_next_state_since_kept_while_pending_cleared_at_zero() -> None:
    first = apt_security.next_state({"count": 0, "since": None}, 2, 1000.4)
    assert first == {"count": 2, "since": 1000}
    assert apt_security.next_state(first, 5, 5000) == {"count": 5, "since": 1000}
    assert apt_security.next_state(first, 0, 6000) == {"count": 0, "since": None}


def test_save_state_then_load_state_round_trip(tmp_path) -> None:
    apt_security.save_state(str(tmp_path / "st"), {"count": 3, "since": 77})
    assert apt_security.load_state(str(tmp_path / "st")) == {"count": 3, "since": 77}
    assert apt_security.load_state(str(tmp_path / "none")) == {"count": 0, "since": None}


def test_metrics_pending_since_only_when_pending() -> None:
    with_since = parse_text(textfile.render(apt_security.metrics(2, 1000, True)))
    assert with_since[("hosting_apt_security_updates_pending", ())] == 2
    assert with_since[("hosting_apt_security_updates_pending_since_timestamp_seconds", ())] \
        == 1000
    none = parse_text(textfile.render(apt_security.metrics(0, None, True)))
    assert ("hosting_apt_security_updates_pending_since_timestamp_seconds", ()) not in none


def test_main_apt_failure_keeps_last_figures_check_0(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(textfile.ENV_DIR, str(tmp_path / "tf"))
    apt_security.save_state(str(tmp_path / "st"), {"count": 4, "since": 99})
    monkeypatch.setattr(apt_security, "APT", ["false"])
    assert apt_security.main(["--state", str(tmp_path / "st")]) == 1
    s = parse_text((tmp_path / "tf" / apt_security.PROM).read_text())
    assert s[("hosting_apt_check_success", ())] == 0
    assert s[("hosting_apt_security_updates_pending", ())] == 4
    assert s[("hosting_apt_security_updates_pending_since_timestamp_seconds", ())] == 99


UU_LOG = """\
2026-12-03 06:12:01,101 INFO Starting unattended upgrades script
2026-12-03 06:12:01,102 ERROR Installing the upgrades failed!
2026-12-04 06:25:01,123 INFO Starting unattended upgrades script
2026-12-04 06:25:01,124 INFO Allowed origins are: origin=Debian,codename=trixie-security
2026-12-04 06:25:09,900 INFO All upgrades installed
"""


def test_last_unattended_run_later_clean_run_ok_with_its_start() -> None:
    assert apt_security.last_unattended_run(UU_LOG) == (1796365501.0, True)


def test_last_unattended_run_error_in_last_run_failed() -> None:
    text = UU_LOG + "2026-12-04 06:25:10,000 ERROR dpkg returned an error code (1)\n"
    assert apt_security.last_unattended_run(text) == (1796365501.0, False)


def test_unattended_metrics_no_log_no_metric(tmp_path) -> None:
    assert apt_security.unattended_metrics(str(tmp_path / "none.log")) == []
    log = tmp_path / "uu.log"
    log.write_text(UU_LOG)
    s = parse_text(textfile.render(apt_security.unattended_metrics(str(log))))
    assert s[("hosting_apt_unattended_upgrades_last_run_success", ())] == 1


def test_reboot_metrics_no_flag_reports_zero(tmp_path) -> None:
    out = apt_security.reboot_metrics(str(tmp_path / "reboot-required"),
                                      str(tmp_path / "reboot-required.pkgs"))
    assert out == [("hosting_reboot_required", "1 if an installed update needs a reboot.",
                    [({}, 0)])]


def test_reboot_metrics_flag_reports_since_and_distinct_packages(tmp_path) -> None:
    import os
    flag, pkgs = tmp_path / "reboot-required", tmp_path / "reboot-required.pkgs"
    flag.write_text("*** System restart required ***\n")
    os.utime(flag, (1_700_000_000, 1_700_000_000))
    pkgs.write_text("linux-image-6.12.41-amd64\nlibc6\nlibc6\n")
    values = {name: samples[0][1]
              for name, _help, samples in apt_security.reboot_metrics(str(flag), str(pkgs))}
    assert values == {"hosting_reboot_required": 1,
                      "hosting_reboot_required_since_timestamp_seconds": 1_700_000_000,
                      "hosting_reboot_required_packages": 2}
    text = textfile.render(apt_security.reboot_metrics(str(flag), str(pkgs)))
    assert parse_text(text)[("hosting_reboot_required", ())] == 1.0
