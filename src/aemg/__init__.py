"""aemg: self-supervised neuromuscular tokens for surface EMG.

Importing ``aemg`` is light on purpose: numpy only. torch, h5py and matplotlib are imported
inside the functions that need them, so ``aemg --help`` and ``import aemg`` stay instant.
"""

from aemg.errors import DataFormatError
from aemg.recording import Electrode, Recording

__version__ = "0.1.0"

__all__ = ["DataFormatError", "Electrode", "Recording", "__version__"]
