"""Data modules and embedded data sources."""

from objectives.data.batches import InMemoryBatches
from objectives.data.in_memory import InMemoryDataModule

__all__ = ["InMemoryBatches", "InMemoryDataModule"]
