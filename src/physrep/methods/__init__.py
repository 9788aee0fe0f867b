"""Pretraining objectives, one LightningModule each; every one has `encode(x) -> (B, N, D)`."""

from physrep.methods.jepa import JEPA, JEPAConfig
from physrep.methods.videomae import VideoMAE, VideoMAEConfig

METHODS = {"jepa": JEPA, "videomae": VideoMAE}

__all__ = ["JEPA", "METHODS", "JEPAConfig", "VideoMAE", "VideoMAEConfig"]
