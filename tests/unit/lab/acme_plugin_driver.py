"""Run by Debian's /usr/bin/python3 (where certbot-dns-ovh and lexicon are installed) from
test_acme_fake_ovh.py: the real plugin's OVH client adds then deletes a TXT record against
the fake at the URL given as argv[1]. The credentials come on stdin (JSON), never in argv.
Only the endpoint table is pointed at the fake (what the lab does with name resolution)."""
import json
import sys

from lexicon.providers import ovh

ovh.ENDPOINTS["ovh-eu"] = sys.argv[1]

from certbot_dns_ovh._internal.dns_ovh import _OVHLexiconClient  # noqa: E402

creds = json.load(sys.stdin)
client = _OVHLexiconClient("ovh-eu", creds["ak"], creds["as"], creds["ck"], 60)
try:
    client.add_txt_record("villeparisis.fr", "_acme-challenge.villeparisis.fr", "token-1")
    client.del_txt_record("villeparisis.fr", "_acme-challenge.villeparisis.fr", "token-1")
except Exception as exc:  # the test reads the outcome
    print(f"FAILED: {type(exc).__name__}: {exc}")
    sys.exit(1)
print("OK")
