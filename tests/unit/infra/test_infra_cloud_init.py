"""Cloud-init user data: the user CA trusted, no password, no authorized key, the host key
Pulumi generated (R-GDPR-5: certificates only, no trust on first use)."""
from __future__ import annotations

import yaml

from infra.mockrun import MockBuild
from model.bootstrap import HOST_KEY, SSHD_DROPIN, USER_CA

INSTANCE = "openstack:compute/instance:Instance"
KEY = "tls:index/privateKey:PrivateKey"


def _docs(b: MockBuild) -> dict[str, dict]:
    docs = {}
    for r in b.of_type(INSTANCE):
        text = r.inputs["userData"]
        assert text.startswith("#cloud-config\n")
        docs[r.name.removeprefix("vm-")] = yaml.safe_load(text)
    return docs


def _files(doc: dict) -> dict[str, dict]:
    return {f["path"]: f for f in doc["write_files"]}


def test_cloud_init_every_host_trusts_the_user_ca_and_refuses_passwords(built):
    stack, b = built
    for host, doc in _docs(b).items():
        files = _files(doc)
        assert files[USER_CA]["content"].strip() == stack.ssh.user_ca_public_key, host
        sshd = files[SSHD_DROPIN]["content"].splitlines()
        for line in (f"TrustedUserCAKeys {USER_CA}", "PasswordAuthentication no",
                     "KbdInteractiveAuthentication no", "AuthorizedKeysFile none",
                     "PermitRootLogin no"):
            assert line in sshd, (host, line)
        assert doc["ssh_pwauth"] is False and doc["disable_root"] is True
        assert ["passwd", "--lock", "root"] in doc["runcmd"]


def test_cloud_init_installs_no_authorized_key_and_no_default_user(built):
    _, b = built
    for host, doc in _docs(b).items():
        assert doc["users"] == [], host
        assert "ssh_authorized_keys" not in yaml.safe_dump(doc), host
        assert not any("authorized_keys" in path for path in _files(doc)), host


def test_cloud_init_host_key_is_the_one_pulumi_generated(built):
    _, b = built
    for host, doc in _docs(b).items():
        key = b.get(KEY, f"hostkey-{host}")
        assert key.inputs == {"algorithm": "ED25519"}
        files = _files(doc)
        assert files[HOST_KEY]["content"].strip() == key.state["privateKeyOpenssh"].strip()
        assert files[HOST_KEY]["permissions"] == "0600"
        assert files[f"{HOST_KEY}.pub"]["content"].strip() == key.state["publicKeyOpenssh"].strip()
        assert files["/etc/hostname"]["content"] == f"{host}\n" and doc["hostname"] == host
        assert doc["ssh_genkeytypes"] == []  # the image must not make its own keys instead


def test_cloud_init_principals_come_from_the_model(built):
    stack, b = built
    for host, doc in _docs(b).items():
        role = b.get(INSTANCE, f"vm-{host}").inputs["metadata"]["role"]
        principals = _files(doc)[f"/etc/ssh/auth_principals/{stack.ssh.login_user}"]["content"]
        assert principals.split() == list(stack.ssh.principals_for(role))
