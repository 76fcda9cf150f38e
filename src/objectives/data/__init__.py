"""Data modules and embedded data sources."""

from objectives.data.batches import InMemoryBatches
from objectives.data.files import FileDataModule
from objectives.data.in_memory import InMemoryDataModule

__all__ = ["FileDataModule", "InMemoryBatches", "InMemoryDataModule"]
