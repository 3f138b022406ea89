"""Generic data modules (examples that need no wireless code)."""
from .digits import DigitsDataModule
from .mnist1d import MNIST1DDataModule
from .sampling import EpochBatches, EpochShuffle

__all__ = ["DigitsDataModule", "MNIST1DDataModule", "EpochBatches", "EpochShuffle"]
