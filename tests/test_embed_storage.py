"""The embedding cache on disk: storage dtypes, pooled tokens, streamed reads, a cache of the
old format, and the same files from one process and from two gloo ranks."""

import json
import os

import numpy as np
import pytest
import torch

from physrep.config import load_config, preset_path
from physrep.data.windows import WindowConfig
from physrep.eval.embed import cache_key, file_digest, load_or_embed, shard
from physrep.eval.tokens import TokenRows, TokenWriter, pool_tokens
from physrep.train import PretrainConfig, export_initial

WINDOWS = WindowConfig(frames=4, stride=3, target=False)


@pytest.fixture(scope="module")
def data(synthetic_dataset):
    return synthetic_dataset("shear_flow")


@pytest.fixture(scope="module")
def encoder(data, tmp_path_factory):
    cfg = load_config(PretrainConfig, preset_path("pretrain", "tiny"))
    return export_initial(cfg, data, tmp_path_factory.mktemp("encoder") / "s0")


def test_token_rows_read_any_rows_in_the_order_asked(tmp_path):
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(23, 5, 3)).astype(np.float32)
    writer = TokenWriter(tmp_path / "t.npy", len(tokens), "float32")
    for chunk in np.array_split(tokens, 4):
        writer.append(torch.from_numpy(chunk))
    writer.close()
    rows = TokenRows(tmp_path / "t.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), tokens)  # a plain .npy
    index = np.array([7, 2, 3, 4, 22, 0, 7])
    np.testing.assert_array_equal(rows.read(index), tokens[index])
    half = rows.subset(np.arange(23) % 2 == 1)
    np.testing.assert_array_equal(np.asarray(half), tokens[1::2])
    np.testing.assert_array_equal(np.concatenate(list(half.batches(4))), tokens[1::2])


def test_probes_give_the_same_numbers_from_memory_and_streamed_from_disk(tmp_path, monkeypatch):
    import physrep.eval.probes as probes

    rng = np.random.default_rng(0)
    paths = {}
    for split, n in (("train", 40), ("valid", 12)):
        tokens = rng.normal(size=(n, 6, 8)).astype(np.float32)
        writer = TokenWriter(tmp_path / f"{split}.npy", n, "float32")
        writer.append(torch.from_numpy(tokens))
        writer.close()
        paths[split] = (TokenRows(tmp_path / f"{split}.npy"), tokens[:, :2, :2].mean(1))
    cfg = probes.ProbeConfig(epochs=3, width=16, heads=2, batch_size=16)

    def fit() -> tuple[float, np.ndarray]:
        fitted = probes.fit_probe("attentive", paths["train"], paths["valid"], cfg, seed=0)
        return fitted.valid_mse, fitted.predict(paths["valid"][0])

    resident = fit()
    monkeypatch.setattr(probes, "RESIDENT_BYTES", 0)  # every batch read from disk
    streamed = fit()
    assert resident[0] == streamed[0]
    np.testing.assert_array_equal(resident[1], streamed[1])


def test_a_writer_refuses_a_short_file(tmp_path):
    writer = TokenWriter(tmp_path / "t.npy", 5, "float32")
    writer.append(torch.zeros(3, 2, 2))
    with pytest.raises(Exception, match="wrote 3 rows for 5 windows"):
        writer.close()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_storage_halves_the_bytes_and_reads_back_close(dtype, tmp_path):
    tokens = torch.randn(40, 6, 8) * 3
    for name in ("float32", dtype):
        writer = TokenWriter(tmp_path / f"{name}.npy", 40, name)
        writer.append(tokens)
        writer.close()
    full, half = tmp_path / "float32.npy", tmp_path / f"{dtype}.npy"
    assert abs(half.stat().st_size - full.stat().st_size / 2) < 256  # headers aside
    read = np.asarray(TokenRows(half, dtype))
    assert read.dtype == np.float32
    tol = 2**-8 if dtype == "bfloat16" else 2**-11  # 8 and 11 significant bits
    np.testing.assert_allclose(read, tokens.numpy(), rtol=tol, atol=1e-6)
    expected = tokens.to(getattr(torch, dtype)).float().numpy()
    np.testing.assert_array_equal(read, expected)  # exactly torch's rounding


def test_pooling_averages_tokens_a_stride_apart():
    tokens = torch.arange(2 * 6 * 1, dtype=torch.float32).reshape(2, 6, 1)
    pooled = pool_tokens(tokens, 3)
    np.testing.assert_array_equal(pooled[0, :, 0].numpy(), [1.5, 2.5, 3.5])  # (0+3)/2, ...
    assert pool_tokens(tokens, 6) is tokens and pool_tokens(tokens, 0) is tokens
    with pytest.raises(Exception, match="cannot pool 6 tokens to 4"):
        pool_tokens(tokens, 4)


def test_storage_options_key_the_cache_and_label_the_rows(data, encoder, tmp_path):
    full = load_or_embed(encoder, data, tmp_path, cfg=WINDOWS)
    n_tokens = full.splits["train"].tokens.token_shape[0]
    pooled = load_or_embed(encoder, data, tmp_path, cfg=WINDOWS, tokens=n_tokens // 2)
    half = load_or_embed(encoder, data, tmp_path, cfg=WINDOWS, dtype="float16")
    assert len({full.key, pooled.key, half.key}) == 3
    assert (full.tokens, pooled.tokens) == ("all", f"pooled-{n_tokens // 2}")
    a, b = np.asarray(full.splits["test"].tokens), np.asarray(pooled.splits["test"].tokens)
    np.testing.assert_allclose(b, a.reshape(len(a), 2, -1, a.shape[-1]).mean(1), atol=1e-6)
    np.testing.assert_allclose(np.asarray(half.splits["test"].tokens), a, rtol=2e-3, atol=1e-4)


def test_a_cache_of_the_old_format_is_recomputed_not_misread(data, encoder, tmp_path):
    fresh = load_or_embed(encoder, data, tmp_path / "fresh", cfg=WINDOWS)
    expected = np.asarray(fresh.splits["train"].tokens)
    cache = tmp_path / "old"
    # what format 1 left: one .npz per key; and a folder of the new key claiming format 1
    old = cache / f"{fresh.key}.npz"
    old.parent.mkdir()
    np.savez(old, format=np.array("physrep-embeddings/1"), key=np.array(fresh.key))
    folder = cache / fresh.key
    folder.mkdir()
    meta = json.loads((fresh.path / "meta.json").read_text())
    for name in os.listdir(fresh.path):
        (folder / name).write_bytes((fresh.path / name).read_bytes())
    (folder / "train.tokens.npy").write_bytes(b"\x93NUMPY garbage")
    (folder / "meta.json").write_text(json.dumps({**meta, "format": "physrep-embeddings/1"}))
    got = load_or_embed(encoder, data, cache, cfg=WINDOWS)
    assert not got.cached and got.key == fresh.key
    np.testing.assert_array_equal(np.asarray(got.splits["train"].tokens), expected)
    assert load_or_embed(encoder, data, cache, cfg=WINDOWS).cached  # and now it is reused


def test_a_crashed_write_leaves_nothing_that_looks_complete(data, encoder, tmp_path):
    from physrep.runinfo import data_fingerprint

    splits = ["train", "valid", "test"]
    key = cache_key(file_digest(encoder), data_fingerprint(data), WINDOWS, splits)
    partial = tmp_path / f".{key}.partial"  # a crash mid-write leaves only this
    partial.mkdir()
    (partial / "train.rank0.npy").write_bytes(b"half")
    emb = load_or_embed(encoder, data, tmp_path, cfg=WINDOWS)
    assert not emb.cached and emb.key == key and not partial.exists()


def test_shards_are_contiguous_whole_batches_covering_every_window():
    for n, batch, world in [(10, 3, 2), (7, 32, 2), (100, 7, 3), (0, 4, 2)]:
        shards = [shard(n, batch, r, world) for r in range(world)]
        assert [i for s in shards for i in s] == list(range(n))
        assert all(s.start % batch == 0 for s in shards if len(s))


def _embed_as_rank(rank, world, init, encoder, data, cache):
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        load_or_embed(encoder, data, cache, cfg=WINDOWS, batch_size=5)
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_ranks_write_the_files_one_process_writes(data, encoder, tmp_path):
    torch.set_num_threads(1)
    one = load_or_embed(encoder, data, tmp_path / "one", cfg=WINDOWS, batch_size=5)
    init = f"file://{tmp_path / 'rendezvous'}"
    args = (2, init, encoder, data, tmp_path / "two")
    torch.multiprocessing.spawn(_embed_as_rank, args=args, nprocs=2, join=True)
    two = load_or_embed(encoder, data, tmp_path / "two", cfg=WINDOWS, batch_size=5)
    assert two.cached and two.key == one.key
    assert len(one.splits["train"]) % 5 and len(one.splits["train"]) > 10  # shards split it
    for split in one.splits:
        name = f"{split}.tokens.npy"
        assert (one.path / name).read_bytes() == (two.path / name).read_bytes()
    assert sorted(os.listdir(one.path)) == sorted(os.listdir(two.path))


def test_physrep_embed_under_torchrun_shards_and_prints_once(data, encoder, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    one = load_or_embed(encoder, data, tmp_path / "one", cfg=WINDOWS, batch_size=5)
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "physrep", "embed"]
    command += [encoder, "--data", data, "--cache", tmp_path / "two", "--batch-size", "5"]
    command += ["frames=4", "stride=3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("embeddings  ") == 1  # rank 0 alone reports
    two = load_or_embed(encoder, data, tmp_path / "two", cfg=WINDOWS, batch_size=5)
    assert two.cached and two.key == one.key
    for split in one.splits:
        name = f"{split}.tokens.npy"
        assert (one.path / name).read_bytes() == (two.path / name).read_bytes()
