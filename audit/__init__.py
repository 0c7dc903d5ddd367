"""`fab audit`: the hosting contract, clause by clause, with evidence from running things
(R-GDPR-10, R-INC-3; issue 16; docs/audit.md).

  contract.py   the clause ids, read from the contract file (docs/contract/REQUIREMENTS.md)
  clauses.py    each id -> the checks that grade it, or `manual` / `n/a` with the reason
  collect.py    the collectors: what the hosts, the verify suite, restic, Prometheus, the
                incident record and the CA's register say now (over the verified SSH access)
  checks/       pure functions: collected facts -> evidence (pass / fail / manual)
  report.py     rows, audit.md and audit.json (with its JSON schema, report.schema.json)
  run.py        collect, grade, write
Admin side: runs on the admin's machine, like tasks/ and engine/.
"""
