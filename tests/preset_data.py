"""Tiny data files for the experiment presets that read the user's files (every preset is
run by the resume, multi-process and GPU tests; a new one that reads files adds itself)."""

from __future__ import annotations

from pathlib import Path


def files_for(preset: str, folder: Path) -> list[str]:
    """Overrides pointing `preset` at tiny files written under `folder`; none for presets
    whose data is embedded."""
    if preset == "cifar_resnet":  # 14 training and 5 test records of CIFAR-10's binary files
        from tests.test_cifar import write_cifar10_bin

        root = write_cifar10_bin(folder / "cifar-10-batches-bin")
        return [f"data.root={root}", "data.batch_size=4", "data.num_workers=0"]
    return []
