"""Bring your own encoder: a hand-written module goes through `physrep.evaluate` and
`physrep probe module:function`, its rows join a benchmark's report beside physrep's methods,
and a change to its weights is a new embedding cache."""

import shutil

import torch

import physrep
from custom_encoder import make_encoder
from physrep.data.windows import WindowConfig
from physrep.eval.embed import load_or_embed
from physrep.eval.results import read_results

WINDOWS = {"frames": 4, "stride": 4}


def test_a_custom_encoder_joins_the_benchmark_report(tiny_run, tmp_path):
    out = tmp_path / "bench"
    out.mkdir()
    for name in ("results.json", "timings.json", "config.yaml"):
        shutil.copy(tiny_run / name, out / name)
    data = tiny_run / "shear_flow" / "dataset"
    rows = physrep.evaluate(make_encoder(), data, name="patch_means", out=out, windows=WINDOWS)
    assert {r["probe"] for r in rows} == {"attentive", "ridge"} and len(rows) == 12
    assert all(r["method"] == "patch_means" and "coverage_90" in r for r in rows)
    merged = read_results(out / "results.json")
    assert {"patch_means", "jepa", "features"} <= {r["method"] for r in merged}
    page = (out / "report.html").read_text()
    assert "patch_means" in page and "jepa" in page
    again = physrep.evaluate(make_encoder(), data, name="patch_means", out=out, windows=WINDOWS)
    assert len(read_results(out / "results.json")) == len(merged)  # replaced, not added twice
    assert [r["mse"] for r in again] == [r["mse"] for r in rows]


def test_a_change_to_the_weights_is_a_new_cache(tiny_run, tmp_path):
    data = tiny_run / "shear_flow" / "dataset"
    cfg = WindowConfig(**WINDOWS)
    encoder = make_encoder()
    first = load_or_embed(encoder, data, tmp_path, cfg=cfg)
    assert load_or_embed(make_encoder(), data, tmp_path, cfg=cfg).cached  # same weights
    with torch.no_grad():
        encoder.proj.weight[0, 0] += 1e-3
    changed = load_or_embed(encoder, data, tmp_path, cfg=cfg)
    assert not changed.cached and changed.key != first.key


def test_probe_builds_an_encoder_from_an_importable_factory(tiny_run, cli, tmp_path):
    data = tiny_run / "shear_flow" / "dataset"
    code, out, err = cli(
        "probe", "custom_encoder:make_encoder", "--data", data, "--cache", tmp_path,
        "--probes", "ridge", "--seeds", "0", "--out", tmp_path / "rows.json", "frames=4",
        "stride=4",
    )  # fmt: skip
    assert code == 0, err
    rows = read_results(tmp_path / "rows.json")
    assert {r["method"] for r in rows} == {"make_encoder"} and "make_encoder" in out
    code, _, err = cli("probe", "custom_encoder:no_such_factory", "--data", data)
    assert code == 2 and "cannot import 'custom_encoder:no_such_factory'" in err
