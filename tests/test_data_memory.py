"""Bounded memory on the file path: one epoch over four times the images peaks (process plus
DataLoader workers, resident set) within 15 % of one over a quarter of them
(scripts/data_memory.py; docs/benchmarks.md has the 10,000 / 40,000 figures)."""

from __future__ import annotations

import sys

import pytest

from tests.scripts import script


@pytest.mark.slow
def test_streaming_peak_memory_does_not_grow_with_the_image_count() -> None:
    peaks = script("data_memory").measure([1_000, 4_000], ["streaming"])
    assert peaks["streaming", 4_000] <= 1.15 * peaks["streaming", 1_000], peaks


def test_the_sampler_sees_the_whole_process_tree() -> None:
    """The peak counts the workers: a child that starts two workers of its own peaks above
    the sum of what one process alone holds (each worker's resident set is added)."""
    data_memory = script("data_memory")
    code = (
        "import multiprocessing as mp, time\n"
        "def hold():\n"
        "    b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)\n"
        "if __name__ == '__main__':\n"
        "    ps = [mp.Process(target=hold) for _ in range(2)]\n"
        "    [p.start() for p in ps]; [p.join() for p in ps]\n"
    )
    peak, _, status = data_memory.peak_rss_mib([sys.executable, "-c", code])
    assert status == 0 and peak >= 400
