"""Every command in jobs/README.md, the jobs entrypoints' docstrings and the nightly spec comments runs in
scripts/smoke_jobs.sh, unless it is marked as needing a cloud account or a Kubernetes cluster."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "jobs" / "README.md").read_text()
SMOKE_LINES = {line.strip() for line in (ROOT / "scripts" / "smoke_jobs.sh").read_text().splitlines()}
REMOTE = ("# cloud:", "# k8s:")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_bash_commands_are_in_the_smoke_script():
    commands = [line.strip() for block in _blocks("bash") for line in block.splitlines() if line.strip()]
    local = [c for c in commands if not any(tag in c for tag in REMOTE)]
    assert len(local) >= 15
    assert [c for c in local if c not in SMOKE_LINES] == []


def test_cron_line_and_ci_schedule_run_the_smoke_commands():
    (cron,) = [line for block in _blocks("cron") for line in block.splitlines() if line.strip()]
    fields = cron.split(maxsplit=5)
    schedule, command = " ".join(fields[:5]), fields[5]
    assert re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", schedule)
    assert command.split(" && ", 1)[1] in SMOKE_LINES  # after `cd <checkout>`
    (ci,) = [yaml.safe_load(block) for block in _blocks("yaml")]
    assert ci[True]["schedule"][0]["cron"] == schedule  # `on:` parses as True in YAML 1.1
    runs = [step["run"] for step in ci["jobs"]["nightly"]["steps"] if "run" in step]
    assert runs and all(r in SMOKE_LINES for r in runs)


def test_entrypoint_docstrings_and_spec_comments_use_smoke_commands():
    sources = {
        "jobs/submit.py": r"^    (python -m jobs\.submit .*?)(?:\s+#.*)?$",
        "jobs/nightly.py": r"^    (python -m jobs\.nightly .*?)(?:\s+#.*)?$",
        "conf/nightly/tiny.yaml": r"^# Launch: (.*)$",
    }
    for path, pattern in sources.items():
        found = re.findall(pattern, (ROOT / path).read_text(), flags=re.M)
        assert found, path
        assert [c for c in found if c.strip() not in SMOKE_LINES] == [], path
