"""Results blocks in markdown files are rendered from the results folders they name, and the
repository's README.md and docs/*.md agree with their folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from physrep.errors import PhysrepError
from physrep.eval.readme_results import (
    BLOCK,
    main,
    missing_text,
    project_root,
    render,
    render_block,
    stale_blocks,
    update,
)
from physrep.eval.results import write_results
from physrep.runinfo import record_provenance

REPO = Path(__file__).resolve().parents[1]
# method -> test MSE per (probe seed, pretraining seed): supervised is clear of the floor,
# jepa beats random_init beyond both spreads, videomae does not.
TRUE_MSE = {"supervised": 0.30, "random_init": 0.80, "jepa": 0.60, "videomae": 0.78}


def _row(method: str, probe: str, seed: int, mse: float, **extra) -> dict:
    return {"dataset": "toy", "method": method, "probe": probe, "split": "test", "fraction": 1.0,
            "seed": seed, "mse": mse, "mse_nu": mse, "r2_nu": 1 - mse, "n_train": 10,
            "n_test": 5, **extra}  # fmt: skip


def _rows() -> list[dict]:
    rows = [_row("mean", "none", seed, 1.0) for seed in (0, 1)]
    for method, mse in TRUE_MSE.items():
        for seed in (0, 1):
            for pretrain_seed in (0, 1, 2):
                noise = 0.01 * (seed - 0.5) + 0.01 * (pretrain_seed - 1)
                rows.append(
                    _row(method, "attentive", seed, mse + noise, pretrain_seed=pretrain_seed)
                )
    return rows


@pytest.fixture
def results_dir(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    write_results(folder / "results.json", _rows())
    monkeypatch.setattr("sys.argv", ["physrep", "benchmark", "--preset", "toy"])
    record_provenance(folder, ["toy"], keep_others=False)
    return folder


def test_render_states_table_checks_and_provenance(results_dir: Path):
    text = render(results_dir)
    assert "2 probe seeds × 3 pretraining seeds" in text
    assert "| supervised | 0.300 ± 0.010 |" in text  # std over the 6 (seed, pretrain) values
    assert "floor (supervised ≤ 0.35 and ≤ half of random_init): yes (0.300 vs 0.800)" in text
    assert "jepa ahead of its random initialisation beyond both spreads: yes" in text
    assert "jepa vs videomae (the paper's question): +23 % MSE in jepa's favour, beyond" in text
    assert "- toy: `physrep benchmark --preset toy` at physrep commit" in text


def test_update_rewrites_only_the_block_and_is_idempotent(results_dir: Path, tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results: results -->\nstale\n<!-- end results -->\noutro\n")
    assert stale_blocks(readme) == ["results"]
    assert update(readme)
    text = readme.read_text()
    assert text.startswith("intro\n<!-- results: results -->\n") and text.endswith("outro\n")
    assert "stale" not in text and "| jepa | 0.600" in text
    assert not update(readme) and stale_blocks(readme) == []
    readme.write_text("no block here\n")
    with pytest.raises(PhysrepError, match="README.md: no '<!-- results"):
        update(readme)
    with pytest.raises(PhysrepError, match="nowhere.md: no such markdown file"):
        update(tmp_path / "nowhere.md")


def test_blocks_name_folders_from_the_project_root_and_may_wait_for_them(
    results_dir: Path, tmp_path: Path
):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "docs").mkdir()
    doc = tmp_path / "docs" / "results.md"
    doc.write_text(
        "# Results\n<!-- results: results -->\n<!-- end results -->\n"
        "<!-- results: docs/results/later -->\n<!-- end results -->\n"
    )
    assert project_root(doc) == tmp_path
    assert update(doc)
    text = doc.read_text()
    assert render(results_dir) in text  # found from the root, not from docs/
    assert missing_text("docs/results/later") in text
    assert "not in the repository" in render_block("docs/results/later", tmp_path)
    # once the folder is committed, the block is stale until regenerated
    (tmp_path / "docs" / "results" / "later").mkdir(parents=True)
    write_results(tmp_path / "docs" / "results" / "later" / "results.json", _rows())
    assert stale_blocks(doc) == ["docs/results/later"]
    assert main([str(doc), "--check"]) == 1
    assert main([str(doc)]) == 0 and main([str(doc), "--check"]) == 0


def test_physrep_report_docs_rewrites_the_blocks(results_dir: Path, tmp_path: Path, cli):
    (tmp_path / "pyproject.toml").write_text("")
    doc = tmp_path / "results.md"
    doc.write_text("<!-- results: results -->\nold\n<!-- end results -->\n")
    code, out, err = cli("report", "--docs", doc)
    assert code == 0, err
    assert out.strip() == f"{doc}: updated" and "| jepa | 0.600" in doc.read_text()
    assert cli("report", "--docs", doc)[1].strip() == f"{doc}: already up to date"
    code, _, err = cli("report")
    assert code == 2 and "report needs a benchmark folder, or --docs FILE" in err
    code, _, err = cli("report", "--docs", tmp_path / "missing.md")
    assert code == 2 and "missing.md: no such markdown file" in err


def test_provenance_keeps_other_datasets_only_when_asked(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["physrep", "benchmark", "--datasets", "a"])
    record_provenance(tmp_path, ["a"], keep_others=True)
    monkeypatch.setattr("sys.argv", ["physrep", "benchmark", "--datasets", "b"])
    record_provenance(tmp_path, ["b"], keep_others=True)
    made = json.loads((tmp_path / "provenance.json").read_text())
    assert made["a"]["command"].endswith("--datasets a") and set(made) == {"a", "b"}
    record_provenance(tmp_path, ["c"], keep_others=False)
    assert set(json.loads((tmp_path / "provenance.json").read_text())) == {"c"}
    (tmp_path / "provenance.json").write_text("{")
    with pytest.raises(PhysrepError, match="provenance.json: invalid JSON"):
        record_provenance(tmp_path, ["d"], keep_others=True)


def test_the_docs_agree_with_the_results_they_name():
    stale = {
        str(path.relative_to(REPO)): names
        for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
        if (names := stale_blocks(path, REPO))
    }
    assert not stale, (
        f"stale results blocks {stale}: run `physrep report --docs FILE` for each file"
    )


def test_docs_results_has_the_generated_blocks():
    names = [m.group("dir") for m in BLOCK.finditer((REPO / "docs" / "results.md").read_text())]
    assert "docs/results/small" in names
