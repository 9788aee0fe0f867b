"""physrep reads files with the exact layout of The Well's three real datasets."""

import pytest
import torch

from physrep.config import load_config, preset_path
from physrep.data.windows import WellWindows, WindowConfig
from real_layout import REAL, write_real_layout


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    root = tmp_path_factory.mktemp("well")
    return {name: write_real_layout(root, name) for name in REAL}


@pytest.mark.parametrize(
    ("name", "grid", "channels", "params", "boundaries"),
    [
        (
            "active_matter",
            "256 x 256",
            11,
            ["L: 10", "alpha: -1", "zeta: 5"],
            ["x: PERIODIC", "y: PERIODIC"],
        ),
        (
            "shear_flow",
            "256 x 512",
            4,
            ["Reynolds: 10000", "Schmidt: 0.1"],
            ["x: PERIODIC", "y: PERIODIC"],
        ),
        (
            "rayleigh_benard",
            "512 x 128",
            4,
            ["Rayleigh: 1e+06", "Prandtl: 1"],
            ["x: PERIODIC", "y: WALL"],
        ),
    ],
)
def test_inspect_reads_real_layouts(real, cli, name, grid, channels, params, boundaries):
    code, _, err = cli("inspect", real[name], "--split", "test")
    if not (real[name] / "stats.yaml").exists():  # a raw download without its stats is incomplete
        assert code == 2 and "stats.yaml is missing" in err
        assert cli("stats", real[name])[0] == 0
    code, out, err = cli("inspect", real[name])
    assert code == 0, err
    assert f"dataset     {name}" in out and f"resolution  {grid}" in out
    assert f"channels    {channels}:" in out
    for line in params + boundaries:
        assert line in out
    assert "stats.yaml  present, complete" in out
    if name == "rayleigh_benard":
        assert "y         [3.765e-05, 1]  non-uniform" in out  # Chebyshev nodes, inside the walls


def test_stats_then_paper_crops_on_real_grids(real, cli, tmp_path):
    for name in REAL:
        assert cli("stats", real[name])[0] == 0
        assert (real[name] / f"{name}.yaml").exists()
    preset = {"shear_flow": "shear_flow_paper", "rayleigh_benard": "rayleigh_benard_paper"}
    for name, p in preset.items():
        cfg = load_config(
            WindowConfig,
            preset_path("windows", p),
            ["frames=2", "stride=1", "resize=[28,28]", "noise_std=0"],
        )
        windows = WellWindows(real[name], "train", cfg)
        item = windows[0]
        assert item["context"].shape == (4, 2, 28, 28) and torch.isfinite(item["context"]).all()
    # the crop itself: rows 192-320 of rayleigh_benard's 512-long x axis, full wall-normal height
    cfg = load_config(
        WindowConfig, preset_path("windows", "rayleigh_benard_paper"), ["frames=2", "resize=null"]
    )
    assert WellWindows(real["rayleigh_benard"], "valid", cfg).frame_shape == (128, 128)
    cfg = load_config(
        WindowConfig, preset_path("windows", "shear_flow_paper"), ["frames=2", "resize=null"]
    )
    assert WellWindows(real["shear_flow"], "valid", cfg).frame_shape == (256, 256)
    code, out, _ = cli(
        "inspect", real["active_matter"], "--plot", tmp_path / "am.png", "--frames", "2"
    )
    assert code == 0 and "stats.yaml  present, complete" in out
    assert (tmp_path / "am.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
