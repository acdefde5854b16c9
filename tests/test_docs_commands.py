"""Every `crosshar ...` command line the project's text shows a user (README, docs, configs' comments,
benchmark scripts, results' "Regenerate" lines, docstrings) names a real command and only options that
command accepts: a renamed or removed option must not live on in the documentation."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from crosshar.cli import app

ROOT = Path(__file__).resolve().parents[1]
# where a newcomer reads commands; tests/ is left out (tests pass bad options on purpose)
GLOBS = ("README.md", "docs/**/*.md", "configs/**/*.toml", "benchmarks/**/*.sh", "benchmarks/**/*.py",
         "results/**/*.md", "crosshar/**/*.py", "pretrain/**/*.py", "finetune/**/*.py", "evaluate/**/*.py", ".ci/run")
# `crosshar SUB [args]` up to the end of a code span, a table cell, a shell operator or the line
COMMAND = re.compile(r"\bcrosshar ([a-z]+(?: [^`\n|;&)\"']*)?)")


def documented_commands(text: str) -> list[tuple[int, list[str]]]:
    """(line number, tokens after `crosshar`) of every command line in `text`; shell continuations joined."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start, line = i, lines[i]
        while line.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i].strip()
        for m in COMMAND.finditer(line):
            try:
                tokens = shlex.split(m.group(1))
            except ValueError:  # an unbalanced quote inside prose
                tokens = m.group(1).split()
            out.append((start + 1, tokens))
        i += 1
    return out


def check(tokens: list[str], root) -> str | None:
    """None if `tokens` (after `crosshar`) name a command and only its options, else what is wrong.
    Text that is not a command (prose such as "crosshar exists to ...") is not checked."""
    cmd, path = root, []
    while tokens[len(path):] and hasattr(cmd, "commands") and tokens[len(path)] in cmd.commands:
        cmd = cmd.commands[tokens[len(path)]]
        path.append(cmd.name)
    if not path or hasattr(cmd, "commands"):
        return None
    known = {"--help"}
    for p in cmd.params:
        known.update(p.opts)
        known.update(p.secondary_opts)
    for t in tokens[len(path):]:
        if t.startswith("-") and len(t) > 1 and not re.match(r"-[\d.]", t):
            if t.split("=")[0] not in known:
                return f"`crosshar {' '.join(path)}` has no option {t.split('=')[0]}"
    return None


def test_the_checker_catches_an_unknown_option_and_passes_a_known_one():
    root = typer.main.get_command(app)
    assert check(["finetune", "--recipe", "paper"], root) == "`crosshar finetune` has no option --recipe"
    assert check(["finetune", "-d", "uci", "--preset", "paper", "--cadence-views=5"], root) is None
    assert check(["data", "prepare", "--rebuild"], root) is None
    assert check(["exists", "to", "--anything"], root) is None  # prose, not a command
    assert documented_commands("`crosshar cross -d uci \\\n   -td motion --tta 8`") == [(1, ["cross", "-d", "uci", "-td", "motion", "--tta", "8"])]


def test_every_documented_command_uses_options_that_exist():
    root = typer.main.get_command(app)
    files = sorted({p for g in GLOBS for p in ROOT.glob(g) if p.is_file() and ".venv" not in p.parts})
    assert any(p.name == "README.md" for p in files)
    problems, n = [], 0
    for f in files:
        for line, tokens in documented_commands(f.read_text(errors="replace")):
            n += 1
            if (why := check(tokens, root)) is not None:
                problems.append(f"{f.relative_to(ROOT)}:{line}: {why}")
    assert n > 100, n  # the scan found the documentation's commands
    assert not problems, "\n".join(problems)


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
