"""The few lines a run ends with: where it is, what it reached, how to look at it.

Lightning's own test table is switched off (`trainer.test(verbose=False)`), so the test
figures appear once, here, beside the validation ones: the objective with its weighted
terms (they sum to it), then the task's metrics, then the run folder, the best checkpoint
and the TensorBoard command for this run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from objectives.objective.tags import EPOCH_PREFIX, OBJECTIVE, RAW, TERM, WEIGHT, tagged


def objective_line(
    stage: str, player: str, names: Sequence[str], metrics: Mapping, when: str
) -> str | None:
    """`val (last epoch): J = 37.52 = mse 37.51 + l2 0.002824`, `when` saying which weights
    the figures are of (None when the stage was not run)."""
    prefix = tagged(EPOCH_PREFIX[stage], player)
    total = metrics.get(f"{prefix}/{OBJECTIVE}")
    if total is None:
        return None
    terms = [(n, metrics.get(f"{prefix}/{TERM}/{n}")) for n in names]
    parts = " + ".join(f"{n} {v:.4g}" for n, v in terms if v is not None)
    who = f"{stage} {player}" if player else stage
    return f"{who} ({when}): J = {total:.6g}" + (f" = {parts}" if parts else "")


def metrics_line(stage: str, metrics: Mapping[str, float], when: str) -> str | None:
    """`test metrics (best checkpoint): mae 4.686 · mse 29.28`: what is not the objective."""
    prefix = f"{EPOCH_PREFIX[stage]}/"
    objective_parts = (OBJECTIVE, f"{TERM}/", f"{RAW}/", f"{WEIGHT}/")
    shown = {
        name[len(prefix) :]: value
        for name, value in sorted(metrics.items())
        if name.startswith(prefix)
        and not any(part in name.split("/", 1)[1] for part in objective_parts)
    }
    if not shown:
        return None
    return f"{stage} metrics ({when}): " + " · ".join(f"{n} {v:.4g}" for n, v in shown.items())


def closing_lines(
    metrics: Mapping[str, float],
    objectives: Mapping[str, Sequence[str]],
    run_folder: str,
    best: tuple[str, str, float] | None,
    tensorboard_dir: str | None,
    trained: str,
    tested: str,
) -> list[str]:
    """The closing summary: `objectives` maps each objective's name ("" for a task with
    one) to its term names; `best` is (path, monitored metric, score); `tested` says which
    weights the test figures are of."""
    lines = [trained]
    for stage, when in (("val", "last epoch"), ("test", tested)):
        for player, names in objectives.items():
            lines.append(objective_line(stage, player, names, metrics, when))
        lines.append(metrics_line(stage, metrics, when))
    lines.append(f"run folder: {run_folder}")
    if best is not None:
        path, monitor, score = best
        lines.append(f"best checkpoint: {path} ({monitor} {score:.6g})")
    if tensorboard_dir is not None:
        lines.append(f"TensorBoard: tensorboard --logdir {tensorboard_dir}")
    return [line for line in lines if line]
