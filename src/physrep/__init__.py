"""physrep: learn representations of spatiotemporal physical systems and measure the physics in them."""

from physrep.errors import PhysrepError

__version__ = "0.1.0"
__all__ = ["PhysrepError", "__version__"]
