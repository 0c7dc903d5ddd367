"""`python -m model check FILE...`: validate stack configs without touching anything.

Exit 0 with a one-line summary per valid file; exit 1 with one line per problem otherwise.
`python -m model schema-table` prints the README's configuration reference, made from
model/config.schema.json.
"""
from __future__ import annotations

import argparse
import sys

from model.errors import ConfigErrors
from model.parse import load_stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate Pulumi.<env>.yaml files")
    check.add_argument("files", nargs="+")
    sub.add_parser("schema-table", help="print the configuration reference (markdown)")
    args = parser.parse_args(argv)
    if args.command == "schema-table":
        from model.schema_table import markdown_table
        print(markdown_table())
        return 0
    status = 0
    for file in args.files:
        try:
            s = load_stack(file)
        except ConfigErrors as exc:
            for e in exc.errors:
                print(e, file=sys.stderr)
            status = 1
            continue
        print(f"{file}: ok: {s.environment}, {len(s.sites)} sites "
              f"({', '.join(x.domain for x in s.sites)}), region {s.ovh.region}, "
              f"backups B in {s.ovh.backup_b_region}")
    return status


if __name__ == "__main__":
    sys.exit(main())
