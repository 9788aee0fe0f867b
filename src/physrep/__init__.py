"""physrep: learn representations of spatiotemporal physical systems and measure the physics in them."""

from physrep.errors import PhysrepError

__version__ = "0.1.0"
__all__ = ["PhysrepError", "__version__", "evaluate", "load_encoder"]


def load_encoder(path, map_location="cpu"):
    """An exported encoder (`encoder.pt`) as a plain nn.Module with `encode(x) -> (B, N, D)`."""
    from physrep.models.export import load_encoder as _load

    return _load(path, map_location)


def evaluate(encoder, data, **options):
    """Score any encoder on physrep's protocol: see `physrep.eval.evaluate.evaluate`."""
    from physrep.eval.evaluate import evaluate as _evaluate

    return _evaluate(encoder, data, **options)
