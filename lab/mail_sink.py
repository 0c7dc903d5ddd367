"""The lab's mail server stand-in on ops (issue 13): where Alertmanager's email receiver sends
in the lab, so that receiver runs for real. Installed at the ops host's first boot as the
lab's own unit (like the apt proxy's configuration, it is what the outside world gives a VM,
never a role's); tests read the messages from MAIL_DIR."""
from __future__ import annotations

from pathlib import Path

from model.types import Email

HOST, PORT = "127.0.0.1", 2525
UNIT = "hosting-lab-mail.service"
SCRIPT = "/usr/local/lib/hosting-lab/mail_sink_server.py"
MAIL_DIR = "/var/lib/hosting-lab-mail"  # systemd's StateDirectory for the unit
SOURCE = Path(__file__).with_name("mail_sink_server.py")
RECIPIENT = "alerts@lab.invalid"

UNIT_TEXT = f"""[Unit]
Description=Lab mail sink (stands in for the outside world's mail server; lab only)
After=network.target

[Service]
ExecStart=/usr/bin/python3 {SCRIPT} {HOST} {PORT} {MAIL_DIR}
DynamicUser=yes
StateDirectory=hosting-lab-mail
StateDirectoryMode=0750
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""


def email() -> Email:
    """The lab's alert email receiver: the sink, in plain SMTP on ops' loopback."""
    return Email(to=(RECIPIENT,), sender="alertmanager@lab.invalid",
                 smarthost=f"{HOST}:{PORT}", require_tls=False)


def files() -> list[tuple[str, str, int]]:
    """(path, content, mode) to write into ops' root before its first boot."""
    return [(SCRIPT, SOURCE.read_text(), 0o755),
            (f"/etc/systemd/system/{UNIT}", UNIT_TEXT, 0o644)]


def enable_argv() -> list[str]:
    return ["systemctl", "enable", "--now", UNIT]
