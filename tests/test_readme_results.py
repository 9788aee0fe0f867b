"""The README's results block is rendered from a results folder, and the repository's README
agrees with the folder it names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from physrep.errors import PhysrepError
from physrep.eval.readme_results import BLOCK, render, update
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
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results: results -->\nstale\n<!-- end results -->\noutro\n")
    assert update(readme)
    text = readme.read_text()
    assert text.startswith("intro\n<!-- results: results -->\n") and text.endswith("outro\n")
    assert "stale" not in text and "| jepa | 0.600" in text
    assert not update(readme)
    readme.write_text("no block here\n")
    with pytest.raises(PhysrepError, match="README.md: no '<!-- results"):
        update(readme)


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


def test_the_readme_agrees_with_the_results_it_names():
    text = (REPO / "README.md").read_text()
    blocks = list(BLOCK.finditer(text))
    if not blocks:
        pytest.skip("the README has no generated results block")
    for block in blocks:
        assert block.group("body") == render(REPO / block.group("dir")), (
            f"README block for {block.group('dir')} is stale: run "
            "`python -m physrep.eval.readme_results README.md`"
        )
