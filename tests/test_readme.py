"""README.md opens with the two commands, `.ci/run` calls its test command, and every other command the
README shows runs in scripts/smoke_readme.sh (commands marked `# cluster:` are composed there only)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SMOKE = [ln.strip() for ln in (ROOT / "scripts" / "smoke_readme.sh").read_text().splitlines()]


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    return [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def _code(line: str) -> str:
    return line.split("  #", 1)[0].strip()


def test_readme_starts_with_setup_and_test_commands_and_ci_runs_the_test_one():
    first = _commands()[:2]
    assert [_code(c) for c in first] == ["make demo", "make test"]
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci


def test_every_readme_command_runs_in_the_smoke_script():
    missing = []
    for line in _commands()[2:]:
        code = _code(line)
        if "# cluster:" in line:
            ok = any(s.startswith(code + " --cfg job") for s in SMOKE)
        else:
            ok = code in SMOKE
        if not ok:
            missing.append(code)
    assert missing == []
    assert "make demo" in SMOKE
