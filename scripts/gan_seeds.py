"""How a GAN recipe ends, seed by seed: the last validation, the best one, and `eval.py` on
`last.ckpt`, for each loss.

    python scripts/gan_seeds.py                                  # ring_gan, seeds 0 1 2
    python scripts/gan_seeds.py --loss gan_ns gan_hinge --seeds 0 1 2
    python scripts/gan_seeds.py --experiment digits_gan --metric fid_digits --seeds 0
    python scripts/gan_seeds.py --override task.ema_decay=0.99   # any train.py override

Prints a markdown table: per seed and loss the judged generator's metric at the last
validation epoch and at its best one, the raw generator's at the last epoch, what
`eval.py` reports for `last.ckpt` on the test noise, and the wall time of the run. The
runs go to a temporary folder unless `--log-dir` keeps them.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null"]
# lower is better for these; higher for every other metric
LOWER = ("fid",)


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    found: dict[str, list[tuple[int, float]]] = {}
    for file in sorted(run.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(file), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            found.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return {tag: sorted(values) for tag, values in found.items()}


def run(command: list[str]) -> str:
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return done.stdout + done.stderr


def one_run(experiment: str, loss: str | None, seed: int, extra: list[str], root: Path) -> dict:
    log_dir = root / f"{experiment}-{loss or 'default'}-{seed}"
    overrides = [f"experiment={experiment}", f"seed={seed}", f"paths.log_dir={log_dir}",
                 "test=false", *([f"loss={loss}"] if loss else []), *extra, *QUIET]  # fmt: skip
    timing = log_dir / "wall_s.txt"
    if not timing.is_file():  # a run kept in --log-dir is judged again, not retrained
        start = time.perf_counter()
        run([sys.executable, "train.py", *overrides])
        timing.write_text(f"{time.perf_counter() - start:.1f}")
    wall = float(timing.read_text())
    (folder,) = (log_dir / "train" / "runs").iterdir()
    out = run([sys.executable, "eval.py", f"ckpt_path={folder / 'checkpoints' / 'last.ckpt'}",
               f"paths.log_dir={log_dir}", "trainer.enable_progress_bar=false"])  # fmt: skip
    tested = {m[1]: float(m[2]) for m in re.finditer(r"(test/[\w/]+)\s+([-\d.eE+naif]+)", out)}
    return {"values": scalars(folder / "tensorboard"), "tested": tested, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="ring_gan")
    parser.add_argument("--loss", nargs="*", default=[None], help="losses (default: the recipe's)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--metric", default="high_quality", help="the judge's metric to report")
    parser.add_argument("--override", action="append", default=[], help="a train.py override")
    parser.add_argument("--log-dir", type=Path, default=None, help="keep the runs here")
    args = parser.parse_args()
    lower = any(word in args.metric for word in LOWER)
    best = min if lower else max
    with tempfile.TemporaryDirectory() as scratch:
        root = args.log_dir or Path(scratch)
        print(f"| loss | seed | last val/{args.metric} | best (epoch) | raw generator, last "
              f"| modes, last | eval.py last.ckpt | wall |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for loss in args.loss:
            for seed in args.seeds:
                result = one_run(args.experiment, loss, seed, args.override, root)
                values = result["values"]
                judged = values[f"val/{args.metric}"]
                raw = values.get(f"val/raw_generator/{args.metric}", [(0, float("nan"))])
                modes = values.get("val/modes_covered", [(0, float("nan"))])
                epochs = dict(values.get("epoch", []))
                top_step, top = best(judged, key=lambda sv: sv[1])
                tested = result["tested"]
                test_text = f"{tested.get(f'test/{args.metric}', float('nan')):.3f}"
                if "test/modes_covered" in tested:
                    test_text += f", {tested['test/modes_covered']:.0f} modes"
                print(f"| {loss or 'default'} | {seed} | {judged[-1][1]:.3f} | {top:.3f} "
                      f"({epochs.get(top_step, float('nan')):.0f}) | {raw[-1][1]:.3f} "
                      f"| {modes[-1][1]:.0f} | {test_text} | {result['wall']:.0f} s |",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
