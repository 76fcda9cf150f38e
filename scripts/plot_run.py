"""Draw the seed's training figures for one run, or overlay a sweep, from what the run wrote.

Everything comes from the run folder, not from re-training: the TensorBoard event files
(read with TensorBoard's own `EventAccumulator`), `checkpoints/last.ckpt` (for the fitted
line) and `.hydra/overrides.yaml` (to label the runs of a sweep). Panels:

    (a) objective vs loss      train_epoch/objective and train_epoch/raw/<loss> per epoch
    (b) regularizer            train_epoch/term/<regularizer> (the λ·R(θ) that J adds)
    (c) metric                 val/acc (classification) or val/mse (regression), and the
                               training value when it was logged (train_epoch/acc)
    (d) gradient attribution   train/grad_norm/<term> and train/grad_cos/<a>__<b> per step
    (e) fitted line            a one-input linear model: the data, the fit, the truth
    (f) final result           a sweep: the final test/acc (else test/mse, else
                               test/objective) of each run, as the seed's bar charts

A panel without data is left out. In a sweep each run keeps one colour in every panel.

    .venv/bin/python scripts/plot_run.py logs/train/runs/<run> --out fig.png
    .venv/bin/python scripts/plot_run.py logs/train/multiruns/<time> --out sweep.png
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from objectives.data.sources import line
from objectives.data.splits import split_indices

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Series = tuple[list[int], list[float]]

# Overrides that change how a run looks on the console, not what it learns: not labels.
QUIET_KEYS = (
    "callbacks.rich_progress_bar",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "paths.",
    "hydra.",
)
LINESTYLES = ("-", "--", "-.", ":")
PANEL_SIZE = (5.0, 3.6)
DPI = 90
TOTAL = "objective"  # train/grad_norm/objective: the norm of the whole gradient ∂J/∂θ
BAR_TAGS = ("test/acc", "test/mse", "test/objective")


@dataclass
class Run:
    """What one run folder holds that the figures need."""

    path: Path
    scalars: dict[str, Series]
    overrides: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    regularizers: set[str] = field(default_factory=set)
    label: str = ""

    def tags(self, prefix: str) -> list[str]:
        return sorted(tag for tag in self.scalars if tag.startswith(prefix))


def load_scalars(run_dir: Path) -> dict[str, Series]:
    """Every scalar tag of a run as (steps, values), through TensorBoard's own reader."""
    folder = run_dir / "tensorboard" if (run_dir / "tensorboard").is_dir() else run_dir
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    out: dict[str, Series] = {}
    for tag in accumulator.Tags()["scalars"]:
        events = accumulator.Scalars(tag)
        out[tag] = ([e.step for e in events], [e.value for e in events])
    return out


def epoch_series(scalars: dict[str, Series], tag: str) -> Series:
    """An epoch-mean tag against the epoch it belongs to.

    Lightning logs the `epoch` scalar at the same global step as each epoch's means, so
    that step tells the epoch; without it, the n-th value is taken to be epoch n.
    """
    steps, values = scalars[tag]
    epoch_at = dict(zip(*scalars["epoch"], strict=True)) if "epoch" in scalars else {}
    if all(s in epoch_at for s in steps):
        return [int(epoch_at[s]) for s in steps], list(values)
    return list(range(len(values))), list(values)


def fitted_line(checkpoint: dict[str, Any] | None) -> tuple[float, float] | None:
    """(w, b) of a linear model with one input and one output; None for any other model."""
    if checkpoint is None:
        return None
    state = checkpoint.get("state_dict", {})
    weight, bias = state.get("model.weight"), state.get("model.bias")
    if weight is None or bias is None or len(state) != 2 or weight.numel() != 1:
        return None
    return float(weight.flatten()[0]), float(bias.flatten()[0])


def find_runs(paths: Sequence[Path]) -> list[Path]:
    """Run folders; a multirun folder stands for the jobs inside it."""
    runs: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise SystemExit(f"error: {path} is not a folder")
        if (path / "tensorboard").is_dir() or any(path.glob("events.out.tfevents.*")):
            runs.append(path)
            continue
        jobs = sorted(
            (p for p in path.iterdir() if (p / "tensorboard").is_dir()),
            key=lambda p: (len(p.name), p.name),
        )
        if not jobs:
            raise SystemExit(f"error: {path} holds no TensorBoard event files")
        runs.extend(jobs)
    return runs


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def load_run(path: Path) -> Run:
    """A run's scalars, overrides, last checkpoint and the names of its regularizer terms.

    The checkpoint's `run_config` (or else `.hydra/config.yaml`) tells a regularizer term
    from a loss term: both are logged as `*/term/<name>`.
    """
    overrides = read_yaml(path / ".hydra" / "overrides.yaml") or []
    last = path / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True) if last.is_file() else None
    config = (checkpoint or {}).get("run_config") or read_yaml(path / ".hydra" / "config.yaml")
    nodes = (config or {}).get("regularizer") or {}
    regularizers = {
        str(name) for name, node in nodes.items() if node and ("fn" in node or "_target_" in node)
    }
    return Run(path, load_scalars(path), [str(o) for o in overrides], checkpoint, regularizers)


def label_runs(runs: list[Run]) -> None:
    """Label each run by the overrides that tell it apart (all of them for a single run)."""
    kept = [[o for o in r.overrides if not o.startswith(QUIET_KEYS)] for r in runs]
    shared = set.intersection(*(set(k) for k in kept)) if len(runs) > 1 else set()
    for run, overrides in zip(runs, kept, strict=True):
        own = [o for o in overrides if o not in shared]
        run.label = " ".join(own) or run.path.name


# -- panels: each draws on its axes and returns False when it has nothing to draw ---------


def panel_objective(ax: Axes, runs: list[Run]) -> bool:
    """(a) The seed's "objective vs loss": J and each raw loss, one point per epoch.

    In a sweep the legend names the runs (by colour); the line style tells J from a loss.
    """
    sweep = len(runs) > 1
    drawn = False
    for i, run in enumerate(runs):
        if "train_epoch/objective" in run.scalars:
            x, y = epoch_series(run.scalars, "train_epoch/objective")
            label = run.label if sweep else "objective J"
            ax.plot(x, y, color=f"C{i}" if sweep else "C3", lw=2, label=label)
            drawn = True
        losses = [t for t in run.tags("train_epoch/raw/") if term_name(t) not in run.regularizers]
        for j, tag in enumerate(losses):
            x, y = epoch_series(run.scalars, tag)
            label = "_nolegend_" if sweep else f"loss {term_name(tag)}"
            style = LINESTYLES[(j + 1) % len(LINESTYLES)]
            ax.plot(x, y, style, color=f"C{i}" if sweep else "C0", label=label)
            drawn = True
    title = "(a) objective J (solid) vs loss (dashed)" if sweep else "(a) objective vs loss"
    ax.set(title=f"{title}, training", xlabel="epoch", ylabel="epoch mean")
    ax.set_yscale("log")
    return drawn


def term_name(tag: str) -> str:
    return tag.rsplit("/", 1)[1]


def panel_regularizer(ax: Axes, runs: list[Run]) -> bool:
    """(b) The regularizer terms λⱼ·Rⱼ(θ) as J counts them."""
    drawn = False
    for i, run in enumerate(runs):
        terms = [t for t in run.tags("train_epoch/term/") if term_name(t) in run.regularizers]
        for j, tag in enumerate(terms):
            x, y = epoch_series(run.scalars, tag)
            name = term_name(tag)
            label = f"{run.label}: {name}" if len(runs) > 1 else f"{name} term (λ·R(θ))"
            ax.plot(x, y, LINESTYLES[j % len(LINESTYLES)], color=f"C{i}", label=label)
            drawn = True
    ax.set(title="(b) regularizer term in J", xlabel="epoch", ylabel="λ·R(θ)")
    return drawn


def panel_metric(ax: Axes, runs: list[Run], metric: str | None) -> bool:
    """(c) The validation metric (solid), and the training one (dashed) when it was logged.

    Accuracy for classification, MSE for regression; the gap between the two is overfitting.
    """
    if metric is None:
        metric = "acc" if any("val/acc" in r.scalars for r in runs) else "mse"
    sweep = len(runs) > 1
    stages: dict[str, str] = {}
    for i, run in enumerate(runs):
        for stage, style, own_color in (("val", "-", "C0"), ("train_epoch", "--", "C1")):
            tag = f"{stage}/{metric}"
            if tag not in run.scalars:
                continue
            x, y = epoch_series(run.scalars, tag)
            name = run.label if sweep else stage.replace("_epoch", "")
            label = "_nolegend_" if sweep and stage != "val" else f"{name} (last {y[-1]:.4g})"
            ax.plot(x, y, style, color=f"C{i}" if sweep else own_color, label=label)
            stages[stage] = "validation (solid)" if stage == "val" else "training (dashed)"
    if metric in ("mse", "mae", "objective") and stages:
        ax.set_yscale("log")
    ax.set(title=f"(c) {metric}: {', '.join(stages.values())}", xlabel="epoch", ylabel=metric)
    return bool(stages)


def panel_grad_norms(ax: Axes, runs: list[Run]) -> bool:
    """(d) How hard each term pulls on θ: ‖∂(wᵢ·Lᵢ)/∂θ‖, measured by the attribution callback.

    In a sweep the colour is the run (as in panel a), the line style the term, and the
    total is left out (it is the sum of the terms' gradients).
    """
    sweep = len(runs) > 1
    tags = [t for r in runs for t in r.tags("train/grad_norm/")]
    names = list(dict.fromkeys(term_name(t) for t in tags if not sweep or term_name(t) != TOTAL))
    style = {name: LINESTYLES[k % len(LINESTYLES)] for k, name in enumerate(names)}
    for i, run in enumerate(runs):
        for tag in run.tags("train/grad_norm/"):
            name = term_name(tag)
            if name not in style:
                continue
            if sweep:
                color, label = f"C{i}", "_nolegend_"
            else:
                color = "C3" if name == TOTAL else f"C{names.index(name)}"
                label = "objective J (total)" if name == TOTAL else name
            ax.plot(*run.scalars[tag], style[name], color=color, label=label)
    if sweep:  # one legend entry a term; the runs' colours are panel (a)'s
        for name in names:
            ax.plot([], [], style[name], color="black", label=name)
    ax.set(title="(d) gradient norm of each term", xlabel="training step", ylabel="‖∂term/∂θ‖")
    ax.set_yscale("log")
    return bool(names)


def panel_grad_cos(ax: Axes, runs: list[Run]) -> bool:
    """(d) Whether the terms agree: cosine of their gradients (< 0: they pull apart)."""
    drawn = False
    for i, run in enumerate(runs):
        for j, tag in enumerate(run.tags("train/grad_cos/")):
            steps, values = run.scalars[tag]
            pair = term_name(tag).replace("__", " · ")
            label = f"{run.label}: {pair}" if len(runs) > 1 else f"cos({pair})"
            ax.plot(steps, values, LINESTYLES[j % len(LINESTYLES)], color=f"C{i}", label=label)
            drawn = True
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set(title="(d) gradient cosine between terms", xlabel="training step", ylabel="cosine")
    ax.set_ylim(-1.05, 1.05)
    return drawn


def panel_fit(ax: Axes, runs: list[Run]) -> bool:
    """(e) The seed's first plot: data, the fitted line ŷ = w·x + b and the truth."""
    drawn = False
    for i, run in enumerate(runs):
        fit = fitted_line(run.checkpoint)
        data = ((run.checkpoint or {}).get("run_config") or {}).get("data") or {}
        source = dict(data.get("source") or {})
        if fit is None or not str(source.get("_target_", "")).endswith("sources.line"):
            continue
        kwargs = {k: v for k, v in source.items() if not k.startswith("_")}
        x, y = line(**kwargs)
        if not drawn:
            fractions = {
                "val": data.get("val_fraction", 0.0),
                "test": data.get("test_fraction", 0.0),
            }
            train = split_indices(len(x), fractions, int(data.get("split_seed", 0)))["train"]
            held = torch.ones(len(x), dtype=torch.bool)
            held[train] = False
            ax.scatter(x[train], y[train], s=14, alpha=0.6, label=f"training data ({len(train)})")
            ax.scatter(x[held], y[held], s=14, alpha=0.6, marker="x", label="val/test data")
            slope, intercept = kwargs.get("slope", 2.0), kwargs.get("intercept", 1.0)
            truth = f"truth: y = {slope:g}x + {intercept:g}"
            ax.plot(x, slope * x + intercept, "g--", lw=2, zorder=4, label=truth)
        w, b = fit
        prefix = f"{run.label}: " if len(runs) > 1 else "fitted: "
        ax.plot(x, w * x + b, color=f"C{i + 3}", label=f"{prefix}ŷ = {w:.3f}x + {b:.3f}")
        drawn = True
    ax.set(title="(e) data and fitted line (last.ckpt)", xlabel="x", ylabel="y")
    return drawn


def bar_labels(labels: list[str]) -> tuple[list[str], str]:
    """Tick labels that fit under a bar: one override a line, and when every run differs in
    one and the same key only (`regularizer.l2.weight=0.01`), just its value, the key below."""
    keys = {label.split("=", 1)[0] for label in labels if " " not in label and "=" in label}
    if len(keys) == 1 and all(" " not in label and "=" in label for label in labels):
        return [label.split("=", 1)[1] for label in labels], keys.pop()
    return [label.replace(" ", "\n") for label in labels], ""


def panel_final(ax: Axes, runs: list[Run], tag: str | None = None) -> bool:
    """(f) The seed's bar chart: each run's final test accuracy, or test MSE, or objective.

    MSE before the objective: runs of a λ sweep have different objectives, the same loss.
    """
    if len(runs) < 2:
        return False
    for candidate in [tag] if tag else BAR_TAGS:
        if all(candidate in r.scalars for r in runs):
            tag = candidate
            break
    else:
        return False
    heights = [run.scalars[tag][1][-1] for run in runs]  # the last value: the final test
    labels, key = bar_labels([r.label for r in runs])
    bars = ax.bar(range(len(runs)), heights, color=[f"C{i}" for i in range(len(runs))])
    ax.bar_label(bars, fmt="%.3f" if tag == "test/acc" else "%.3g", fontsize=8)
    ax.set_xticks(range(len(runs)), labels, fontsize=7)
    if tag == "test/acc":
        low = min(heights)
        ax.set_ylim(max(0.0, math.floor(low * 20) / 20 - 0.05), 1.0)
    ax.set(title=f"(f) final {tag} per run", ylabel=tag, xlabel=key)
    return True


def default_title(runs: list[Run]) -> str:
    """The run's overrides; for a sweep, what its runs share and how many there are."""
    if len(runs) == 1:
        return runs[0].label
    kept = [[o for o in r.overrides if not o.startswith(QUIET_KEYS)] for r in runs]
    shared = [o for o in kept[0] if all(o in k for k in kept[1:])]
    return f"{' '.join(shared) or runs[0].path.parent.name}: {len(runs)} runs"


def draw(
    runs: list[Run], title: str | None = None, metric: str | None = None, bar: str | None = None
) -> Figure:
    """The figure with every panel that has data, two or three to a row."""
    from matplotlib.figure import Figure

    panels: list[Callable[[Axes], bool]] = [
        lambda ax: panel_objective(ax, runs),
        lambda ax: panel_regularizer(ax, runs),
        lambda ax: panel_metric(ax, runs, metric),
        lambda ax: panel_grad_norms(ax, runs),
        lambda ax: panel_grad_cos(ax, runs),
        lambda ax: panel_fit(ax, runs),
        lambda ax: panel_final(ax, runs, bar),
    ]
    scratch = Figure()  # a dry run on throw-away axes tells which panels have data
    kept = [p for p in panels if p(scratch.add_subplot())]
    columns = 3 if len(kept) > 4 else 2
    rows = max(1, math.ceil(len(kept) / columns))
    figure = Figure(
        figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + 0.4), layout="constrained"
    )
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    for ax, panel in zip(axes, kept, strict=False):
        panel(ax)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7 if len(runs) > 1 else 8)
    for ax in axes[len(kept) :]:
        ax.set_visible(False)
    figure.suptitle(title or default_title(runs))
    return figure


def save_png(figure: Figure, path: Path) -> None:
    """Write a 256-colour PNG: a third of the size of a true-colour one, for the same plot,
    so that figures can be committed (docs/seed/figures/ keeps each under 300 kB)."""
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders, or a multirun folder")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--title", default=None, help="figure title (default: the overrides)")
    parser.add_argument(
        "--metric", default=None, help="validation metric for (c): acc, mse, r2, ... (auto)"
    )
    parser.add_argument(
        "--bar",
        default=None,
        help="final value compared across a sweep in (f) (auto: " + ", else ".join(BAR_TAGS) + ")",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Path:
    """Read the runs, draw, write the PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, safe on servers and in tests
    args = parse_args(argv)
    runs = [load_run(path) for path in find_runs(args.runs)]
    label_runs(runs)
    figure = draw(runs, args.title, args.metric, args.bar)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_png(figure, args.out)
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
