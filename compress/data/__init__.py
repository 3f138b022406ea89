"""Generic data modules (examples that need no wireless code)."""
from .digits import DigitsDataModule

__all__ = ["DigitsDataModule"]
