"""Check that the commands and links shown in markdown docs still hold.

Every fenced code block must name its language. In shell blocks (bash, sh, shell, console)
each command is checked against the code, without running its work:

- `physrep SUB ...` (also `python -m physrep`, `torchrun ... -m physrep`, `srun physrep`): the
  argv is parsed by physrep's own parser (`physrep.cli.parse_args`), so an unknown command or
  flag, or a value of the wrong type, fails; and `python -m physrep SUB --help` must exit 0.
- `python -m physrep.MODULE ...` and `python SCRIPT.py ...`: the script must exist, `--help`
  must exit 0, and the doc's argv must pass the script's own argparse parser (the script is
  stopped right after parsing).
- `make TARGET`: the target must exist in the Makefile.

Other programs (pip, apt-get) are not checked. Python blocks must compile and YAML blocks
must load. Every relative link `[text](path#anchor)` outside code must point to an existing
file or folder, and its anchor to a heading of that file. Scripts and modules run in one
subprocess, so torch is imported once.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import yaml

FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
SHELL = {"bash", "sh", "shell", "console"}
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
PYTHON = re.compile(r"^(\S*/)?python(3(\.\d+)?)?$")
LAUNCHERS = {"sudo", "srun", "nohup", "time"}

# Runs scripts and modules in one interpreter: `help` jobs append --help and must exit 0;
# `parse` jobs give the doc's argv, and argparse's parse_args stops the script once it parsed.
DRIVER = r"""
import argparse, contextlib, io, json, runpy, sys
class Parsed(Exception):
    pass
original = argparse.ArgumentParser.parse_args
def parse_then_stop(self, args=None, namespace=None):
    original(self, args, namespace)
    raise Parsed
results = []
for job in json.load(sys.stdin):
    out = io.StringIO()
    argparse.ArgumentParser.parse_args = parse_then_stop if job["mode"] == "parse" else original
    sys.argv = [job["target"], *job["argv"]]
    code = "finished without parsing its arguments"
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            if job["kind"] == "module":
                runpy.run_module(job["target"], run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(job["target"], run_name="__main__")
    except Parsed:
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:
        code = f"{type(exc).__name__}: {exc}"
    results.append({"code": code, "output": out.getvalue()[-2000:]})
json.dump(results, sys.__stdout__)
"""


@dataclass
class Command:
    where: str  # file:line
    argv: list[str]


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # one line per command checked
    skipped: list[str] = field(default_factory=list)  # commands of programs not checked


def _blocks(text: str):
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        body = "\n".join(s[len(m["indent"]) :] for s in m["body"].splitlines())
        yield m["lang"].strip(), body, line


def shell_commands(text: str, name: str) -> list[Command]:
    """The commands of the shell blocks of a markdown text (continuations joined, comments
    and `$ ` prompts dropped)."""
    commands = []
    for lang, body, first in _blocks(text):
        if lang not in SHELL:
            continue
        pending, start = "", 0
        for i, line in enumerate(body.splitlines()):
            if not pending:
                start = first + 1 + i
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            argv = shlex.split(pending + line, comments=True)
            pending = ""
            if argv:
                commands.append(Command(f"{name}:{start}", argv))
    return commands


def _program(argv: list[str]) -> tuple[str, list[str]] | None:
    """(kind, argv) of what a command runs: ('physrep', args after `physrep`), ('module',
    [module, *args]), ('script', [path, *args]), ('make', targets); None for other programs."""
    argv = list(argv)
    while argv and (("=" in argv[0] and not argv[0].startswith("-")) or argv[0] in LAUNCHERS):
        argv = argv[1:]  # VAR=value prefixes, sudo, srun ...
    if not argv:
        return None
    head = argv[0]
    if head == "physrep" or head.endswith("/physrep"):
        return "physrep", argv[1:]
    if head == "make":
        return "make", [a for a in argv[1:] if not a.startswith("-") and "=" not in a]
    if head == "torchrun" or PYTHON.match(head):
        if "-m" in argv:
            i = argv.index("-m")
            module, rest = argv[i + 1], argv[i + 2 :]
            if module == "physrep":
                return "physrep", rest
            return ("module", [module, *rest]) if module.startswith("physrep.") else None
        scripts = [i for i, a in enumerate(argv) if a.endswith(".py")]
        if scripts:
            return "script", argv[scripts[0] :]
    return None


def make_targets(makefile: Path) -> set[str]:
    targets = set()
    for line in makefile.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*:(?!=)", line)
        if m:
            targets.update(m.group(1).split())
    return targets


def parse_physrep(argv: list[str]) -> str | None:
    """None when physrep's own parser accepts `argv`, else what it said."""
    from physrep.cli import parse_args

    out = StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(out):
            parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return out.getvalue().strip().splitlines()[-1] if out.getvalue() else str(exc.code)
    return None


def run_jobs(jobs: list[dict], cwd: Path) -> list[dict]:
    """Run the driver over `jobs` in one subprocess (cwd `cwd`, physrep importable)."""
    if not jobs:
        return []
    import physrep

    src = str(Path(physrep.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"docs check driver failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def _links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every markdown link outside code."""
    blanked = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    blanked = INLINE_CODE.sub("", blanked)
    return [(blanked.count("\n", 0, m.start()) + 1, m["target"]) for m in LINK.finditer(blanked)]


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a markdown text (`## A `b` (c)` -> `a-b-c`;
    a repeated heading gets -1, -2, ...)."""
    blanked = FENCE.sub("", text)
    seen: dict[str, int] = {}
    found = set()
    for m in re.finditer(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", blanked, re.M):
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def check_docs(docs: dict[str, str], root: Path) -> Report:
    """Check markdown texts, {name: text} with names relative to `root` (the repository:
    Makefile, scripts and links are looked up there)."""
    report = Report()
    jobs, job_where = [], []
    help_for: set[str] = set()
    makefile = root / "Makefile"
    targets = make_targets(makefile) if makefile.is_file() else set()

    for name, text in docs.items():
        for lang, body, line in _blocks(text):
            where = f"{name}:{line}"
            if not lang:
                report.problems.append(f"{where}: a code block that does not name its language")
            elif lang == "python":
                try:
                    compile(body, where, "exec")
                except SyntaxError as exc:
                    report.problems.append(f"{where}: python block does not compile: {exc}")
            elif lang == "yaml":
                try:
                    yaml.safe_load(body)
                except yaml.YAMLError as exc:
                    report.problems.append(f"{where}: yaml block does not load: {exc}")

        for cmd in shell_commands(text, name):
            shown = shlex.join(cmd.argv)
            found = _program(cmd.argv)
            if found is None:
                report.skipped.append(f"{cmd.where}: {shown}")
                continue
            kind, argv = found
            report.checked.append(f"{cmd.where}: {shown}")
            if kind == "physrep":
                said = parse_physrep(argv)
                if said:
                    report.problems.append(f"{cmd.where}: `{shown}` is refused: {said}")
                sub = next((a for a in argv if not a.startswith("-")), None)
                if sub and not said:
                    help_for.add(sub)
            elif kind == "make":
                if not targets:
                    report.problems.append(f"{cmd.where}: `{shown}` but no Makefile in {root}")
                for target in argv or []:
                    if target not in targets:
                        report.problems.append(f"{cmd.where}: no make target '{target}'")
            elif kind == "script" and not (root / argv[0]).is_file():
                report.problems.append(f"{cmd.where}: no script {argv[0]}")
            else:
                job_kind = "module" if kind == "module" else "script"
                for mode, args in (("help", ["--help"]), ("parse", argv[1:])):
                    jobs.append({"kind": job_kind, "target": argv[0], "argv": args, "mode": mode})
                    job_where.append(f"{cmd.where}: `{shown}` ({mode})")

        for line, target in _links(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            path = (root / name).parent / file
            if file and not path.exists():
                report.problems.append(f"{name}:{line}: link to missing {target}")
            elif anchor and (not file or path.suffix == ".md"):
                headings = anchors(path.read_text() if file else text)
                if anchor not in headings:
                    report.problems.append(f"{name}:{line}: no heading for {target}")

    for sub in sorted(help_for):
        jobs.append(
            {"kind": "module", "target": "physrep", "argv": [sub, "--help"], "mode": "help"}
        )
        job_where.append(f"`physrep {sub} --help`")
    for where, result in zip(job_where, run_jobs(jobs, root)):
        if result["code"] != 0:
            tail = result["output"].strip().splitlines()[-1:] or [""]
            report.problems.append(f"{where} exits {result['code']}: {tail[0]}")
    return report


def doc_files(root: Path) -> dict[str, str]:
    """README.md and docs/*.md, by path relative to `root`."""
    paths = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    return {str(p.relative_to(root)): p.read_text() for p in paths}
