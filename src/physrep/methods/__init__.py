"""Pretraining objectives, one LightningModule each, and their registry.

Every method subclasses `PretrainModule` (shared steps, optimiser, export) and implements
`from_config`, `loss` and `trainable`. A new method is one file here and one entry in
`METHODS`: its config section (`config_class`) joins `PretrainConfig` by itself.
"""

from physrep.methods.autoregressive import Autoregressive, AutoregressiveConfig
from physrep.methods.common import DataShape, PretrainModule
from physrep.methods.disco import Disco, DiscoConfig
from physrep.methods.jepa import JEPA, JEPAConfig
from physrep.methods.released import ReleasedJEPA, ReleasedJEPAConfig
from physrep.methods.supervised import Supervised, SupervisedConfig
from physrep.methods.videomae import VideoMAE, VideoMAEConfig

METHODS: dict[str, type[PretrainModule]] = {
    m.name: m for m in (JEPA, VideoMAE, Autoregressive, Disco, Supervised, ReleasedJEPA)
}

__all__ = [
    "JEPA",
    "METHODS",
    "Autoregressive",
    "AutoregressiveConfig",
    "DataShape",
    "Disco",
    "DiscoConfig",
    "JEPAConfig",
    "PretrainModule",
    "ReleasedJEPA",
    "ReleasedJEPAConfig",
    "Supervised",
    "SupervisedConfig",
    "VideoMAE",
    "VideoMAEConfig",
]
