"""Generic data modules (examples that need no wireless code)."""
from .digits import DigitsDataModule
from .sampling import EpochBatches, EpochShuffle

__all__ = ["DigitsDataModule", "EpochBatches", "EpochShuffle"]
