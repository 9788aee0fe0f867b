"""Pretraining objectives, one LightningModule each; every one has `encode(x) -> (B, N, D)`."""

from physrep.methods.jepa import JEPA, JEPAConfig
from physrep.methods.supervised import Supervised, SupervisedConfig
from physrep.methods.videomae import VideoMAE, VideoMAEConfig

METHODS = {"jepa": JEPA, "videomae": VideoMAE, "supervised": Supervised}

__all__ = [
    "JEPA",
    "METHODS",
    "JEPAConfig",
    "Supervised",
    "SupervisedConfig",
    "VideoMAE",
    "VideoMAEConfig",
]
