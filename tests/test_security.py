"""Security posture checks that can run here (the rest is tested with the jobs: token auth, loopback-only
job server, canary token absent from run dirs, logs, wandb and history — tests/test_jobs_*.py).

- Model outputs are data: graders parse them and never evaluate them as code.
- No project code calls eval/exec/compile on anything.
- Config files carry no secret values; secrets come from the environment only.
"""
import ast
from pathlib import Path

import pytest
import yaml

from pipeline.grade import GradingPool
from pipeline.graders import GRADERS
from pipeline.schema import GRADE_STATUSES

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "analysis", "jobs", "toyworld", "bench")


def _payloads(marker: Path) -> list[str]:
    code = f"__import__('os').system('touch {marker}')"
    return [
        f"\\boxed{{{code}}}",
        f"Final Answer: The final answer is ${code}$. I hope it is correct.",
        f"#### {code}",
        f"Answer: {code}",
        f"\\boxed{{exec('open(\"{marker}\", \"w\").write(\"x\")')}}",
        f"\\boxed{{eval(\"{code}\")}}",
        "\\boxed{().__class__.__base__.__subclasses__()}",
        f"\\boxed{{open('{marker}', 'w')}}",
    ]


@pytest.mark.parametrize("grader", sorted(GRADERS))
def test_graders_never_execute_model_output(grader, tmp_path):
    marker = tmp_path / "executed"
    with GradingPool(grader, timeout_s=10) as pool:
        grades = pool.grade("3", _payloads(marker))
    assert not marker.exists()
    assert all(g.grade_status in GRADE_STATUSES and g.is_correct is not True for g in grades)


def test_no_project_code_calls_eval_exec_or_compile():
    calls = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                        "eval", "exec", "compile", "__import__"):
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}")
    assert not calls


SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "access_key", "credential")


def _secret_values(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{path}.{k}" if path else str(k)
            if any(w in str(k).lower() for w in SECRET_WORDS) and isinstance(v, str) and v and not v.startswith("${"):
                # Allowed: names of environment variables that hold the secret (token_env: RAY_AUTH_TOKEN) and
                # paths of files that do (file_mounts: {~/.ray/auth_token: ~/.ray/auth_token}).
                if not ((str(k).lower().endswith("_env") and v.isupper()) or v.startswith(("~/", "/"))):
                    yield key, v
            yield from _secret_values(v, key)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _secret_values(v, f"{path}[{i}]")


def test_config_files_hold_no_secret_values():
    found = []
    for path in [*(ROOT / "conf").rglob("*.yaml"), ROOT / "cluster.yaml", *(ROOT / "k8s").rglob("*.yaml")]:
        for doc in yaml.safe_load_all(path.read_text()):
            found += [f"{path.relative_to(ROOT)}: {k}" for k, _ in _secret_values(doc)]
    assert not found
