"""Peak memory of one training epoch over image folders of different sizes: streaming
(`data.in_memory=false`, the default) against decoding everything first (`true`).

For each count it writes a folder of random 32×32 RGB PNGs (10 classes), then runs
`train.py` for one epoch on it in a child process, sampling every 50 ms the resident set
of that process and of every process under it (the DataLoader workers), summed. Shared
pages (torch's libraries in each worker) count once a process, the same at every count:
what grows with the count is what the data path holds.

    python scripts/data_memory.py                       # 10,000 and 40,000 images
    python scripts/data_memory.py --counts 1000 4000 --modes streaming
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = {"streaming": "false", "in_memory": "true"}
last_peak: dict[str, float] = {}  # of the last measurement: the main process's MiB, processes


def write_images(folder: Path, count: int, size: int = 32, classes: int = 10) -> Path:
    """`count` random RGB images as `folder/<class>/<i>.png` (fast PNG compression)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in range(classes):
        (folder / f"c{label}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"c{i % classes}" / f"{i:06d}.png", compress_level=1)
    return folder


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    """`pid` and every process under it, from each process's parent id in /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue += parents.get(current, [])
    return tree


def peak_rss_mib(command: list[str], interval: float = 0.05) -> tuple[float, float, int]:
    """(peak MiB of the process tree's summed resident sets, seconds, exit status); the
    main process's own peak and the processes alive at the tree's peak go to `last_peak`."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = main_peak = processes = 0
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.append(child.stdout.read()), daemon=True)
    reader.start()
    while child.poll() is None:
        sizes = [_rss_kib(p) for p in _descendants(child.pid)]
        if sum(sizes) > peak:
            peak, processes = sum(sizes), len(sizes)
        main_peak = max(main_peak, sizes[0] if sizes else 0)
        time.sleep(interval)
    last_peak.update(main=main_peak / 1024, processes=processes)
    reader.join()
    if child.returncode:
        sys.stderr.write(b"".join(output).decode(errors="replace")[-3000:])
    return peak / 1024, time.perf_counter() - start, child.returncode


def epoch_command(root: Path, in_memory: str, logs: Path) -> list[str]:
    return [
        sys.executable, "train.py", "task=classification", "data=image_folder",
        f"data.root={root}", f"data.in_memory={in_memory}", "data.num_workers=2",
        "data.stats_samples=1000", "model=mlp", "model.hidden=[32]", "loss=cross_entropy",
        "trainer.max_epochs=1", "test=false", "callbacks=none", "logger=none",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        f"paths.log_dir={logs}",
    ]  # fmt: skip


def measure(counts: list[int], modes: list[str]) -> dict[tuple[str, int], float]:
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            root = write_images(Path(tmp) / f"images_{count}", count)
            for mode in modes:
                mib, seconds, status = peak_rss_mib(
                    epoch_command(root, MODES[mode], Path(tmp) / "logs")
                )
                if status:
                    raise SystemExit(f"error: the {mode} epoch over {count} images failed")
                peaks[mode, count] = mib
                print(
                    f"{mode:>9}  {count:>7,} images: peak {mib:5.0f} MiB over "
                    f"{last_peak['processes']:.0f} processes; main process alone "
                    f"{last_peak['main']:5.0f} MiB  ({seconds:.0f} s)"
                )
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 40_000])
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    args = parser.parse_args()
    peaks = measure(args.counts, args.modes)
    low, high = min(args.counts), max(args.counts)
    for mode in args.modes:
        ratio = peaks[mode, high] / peaks[mode, low]
        print(f"{mode}: peak at {high:,} images / at {low:,} = {ratio:.3f}")


if __name__ == "__main__":
    main()
