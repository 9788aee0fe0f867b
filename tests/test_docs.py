"""The commands and links shown in README.md and docs/*.md hold against the code (see
docs_check.py for what is checked), and the checker rejects what it should."""

from __future__ import annotations

from pathlib import Path

from docs_check import check_docs, doc_files, make_targets, shell_commands

REPO = Path(__file__).resolve().parents[1]


def test_every_command_and_link_in_the_docs_holds():
    docs = doc_files(REPO)
    assert "README.md" in docs and len(docs) > 1
    report = check_docs(docs, REPO)
    assert not report.problems, "\n".join(report.problems)
    checked = "\n".join(report.checked)
    # the front door's commands are among those checked
    for command in ("make demo", "make test", "physrep benchmark", "physrep estimate"):
        assert command in checked, f"no `{command}` checked in the docs"


def test_shell_commands_join_continuations_and_drop_comments():
    text = (
        "intro\n\n```bash\n$ physrep probe enc.pt \\\n    --data d   # the data\n"
        "make test  # tests\n\n```\n\n```python\nphysrep = 1\n```\n"
    )
    commands = shell_commands(text, "x.md")
    assert [c.argv for c in commands] == [
        ["physrep", "probe", "enc.pt", "--data", "d"],
        ["make", "test"],
    ]
    assert [c.where for c in commands] == ["x.md:4", "x.md:6"]


def test_the_checker_rejects_what_does_not_hold(tmp_path: Path):
    (tmp_path / "Makefile").write_text(".PHONY: demo\ndemo: venv\n\tphysrep demo\nvenv:\n")
    assert make_targets(tmp_path / "Makefile") == {".PHONY", "demo", "venv"}
    (tmp_path / "tool.py").write_text(
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--steps', type=int)\n"
        "p.parse_args()\nraise SystemExit('the work ran: the checker must stop before it')\n"
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# The `part` (one)\n\ntext\n")
    good = (
        "# Good\nSee [there](docs/there.md#the-part-one), [the web](https://example.org), [up](#good).\n"
        "```bash\nmake demo\nphysrep probe enc.pt --data d --probes ridge\n"
        "python tool.py --steps 3\npip install anything --at-all\n```\n"
    )
    report = check_docs({"good.md": good}, tmp_path)
    assert not report.problems, report.problems
    assert len(report.checked) == 3 and report.skipped == [
        "good.md:7: pip install anything --at-all"
    ]

    bad = (
        "A [broken link](docs/nowhere.md), and `[not a link](in/code.md)`.\n"
        "[a](docs/there.md#nowhere) [b](#missing)\n"
        "```bash\nphysrep probe enc.pt --data d --no-such-flag\nphysrep nosuchcommand\n"
        "physrep probe enc.pt --data d --epochs many\nmake nosuchtarget\n"
        "python tool.py --stepz 3\npython missing.py\n```\n\n```\nuntagged\n```\n\n"
        "```python\ndef broken(:\n```\n"
    )
    problems = "\n".join(check_docs({"bad.md": bad}, tmp_path).problems)
    for expected in (
        "bad.md:1: link to missing docs/nowhere.md",
        "bad.md:2: no heading for docs/there.md#nowhere",
        "bad.md:2: no heading for #missing",
        "bad.md:4: `physrep probe enc.pt --data d --no-such-flag` is refused: "
        "physrep: error: unrecognized arguments: --no-such-flag",
        "bad.md:5: `physrep nosuchcommand` is refused",
        "bad.md:6: `physrep probe enc.pt --data d --epochs many` is refused",
        "bad.md:7: no make target 'nosuchtarget'",
        "bad.md:8: `python tool.py --stepz 3` (parse) exits 2",
        "bad.md:9: no script missing.py",
        "bad.md:12: a code block that does not name its language",
        "bad.md:16: python block does not compile",
    ):
        assert expected in problems, f"missing {expected!r} in:\n{problems}"
    assert "in/code.md" not in problems
    assert len(problems.splitlines()) == 11
