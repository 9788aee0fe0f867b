"""Pretraining objectives, one LightningModule each; every one has `encode(x) -> (B, N, D)`."""

from physrep.methods.autoregressive import Autoregressive, AutoregressiveConfig
from physrep.methods.disco import Disco, DiscoConfig
from physrep.methods.jepa import JEPA, JEPAConfig
from physrep.methods.supervised import Supervised, SupervisedConfig
from physrep.methods.videomae import VideoMAE, VideoMAEConfig

METHODS = {
    "jepa": JEPA,
    "videomae": VideoMAE,
    "autoregressive": Autoregressive,
    "disco": Disco,
    "supervised": Supervised,
}

__all__ = [
    "JEPA",
    "METHODS",
    "Autoregressive",
    "AutoregressiveConfig",
    "Disco",
    "DiscoConfig",
    "JEPAConfig",
    "Supervised",
    "SupervisedConfig",
    "VideoMAE",
    "VideoMAEConfig",
]
