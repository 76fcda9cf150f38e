"""scripts/plot_run.py: draws what a real run logged, and the fitted line its checkpoint holds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import matplotlib.image as mpimg
import pytest
import torch
from omegaconf import DictConfig

from objectives.run.train import train
from tests.conftest import load_script as load_conftest_script
from tests.conftest import read_scalars

SCRIPT = Path(__file__).parents[1] / "scripts" / "plot_run.py"
EPOCHS = 3


def load_script() -> ModuleType:
    return load_conftest_script("plot_run")


def axes_by_panel(figure) -> dict[str, object]:
    """Visible axes keyed by their panel letter: "(a)", "(b)", ..."""
    out: dict[str, object] = {}
    for ax in figure.axes:
        if ax.get_visible() and ax.get_title().startswith("("):
            out.setdefault(ax.get_title().split()[0], ax)
    return out


def line_labelled(ax, start: str):
    lines = [ln for ln in ax.get_lines() if str(ln.get_label()).startswith(start)]
    assert len(lines) == 1, [ln.get_label() for ln in ax.get_lines()]
    return lines[0]


@pytest.fixture
def linear_run(compose_cfg: Callable[..., DictConfig], tmp_path: Path) -> Path:
    """A real 3-epoch seed_linear run (one full-batch step an epoch) written to tmp_path."""
    train(compose_cfg("experiment=seed_linear", f"trainer.max_epochs={EPOCHS}"))
    return tmp_path


def test_plot_run_draws_the_logged_values_and_the_checkpoints_line(linear_run: Path) -> None:
    plot_run = load_script()
    out = linear_run / "figure" / "seed_linear.png"

    assert plot_run.main([str(linear_run), "--out", str(out), "--title", "t"]) == out
    image = mpimg.imread(out)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert 500 < image.shape[1] < 2500 and 300 < image.shape[0] < 1500

    run = plot_run.load_run(linear_run)
    plot_run.label_runs([run])
    panels = axes_by_panel(plot_run.draw([run]))
    # single run, linear model of one input: every panel but the sweep's bar chart
    assert set(panels) == {"(a)", "(b)", "(c)", "(d)", "(e)"}

    # (a) the objective drawn is the one TensorBoard's reader gives, one point per epoch
    truth = read_scalars(linear_run / "tensorboard")
    objective = line_labelled(panels["(a)"], "objective")
    assert list(objective.get_xdata()) == list(range(EPOCHS))
    assert list(objective.get_ydata()) == [v for _, v in truth["train_epoch/objective"]]
    loss = line_labelled(panels["(a)"], "loss mse")
    assert list(loss.get_ydata()) == [v for _, v in truth["train_epoch/raw/mse"]]
    # (b) holds the regularizer term only, not the loss term
    (term,) = panels["(b)"].get_lines()
    assert list(term.get_ydata()) == [v for _, v in truth["train_epoch/term/l2"]]

    # (e) the fitted line is the last checkpoint's w, b (read here independently)
    state = torch.load(linear_run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    w, b = float(state["model.weight"].item()), float(state["model.bias"].item())
    fitted = line_labelled(panels["(e)"], "fitted")
    x = torch.as_tensor(fitted.get_xdata(), dtype=torch.float64)
    y = torch.as_tensor(fitted.get_ydata(), dtype=torch.float64)
    assert x.min() == 0.0 and x.max() == 10.0
    torch.testing.assert_close(y, w * x + b, rtol=1e-5, atol=1e-5)
    assert f"{w:.3f}x + {b:.3f}" in str(fitted.get_label())


def test_panels_without_data_are_absent_and_a_sweep_gets_its_bar_chart(linear_run: Path) -> None:
    plot_run = load_script()
    run = plot_run.load_run(linear_run)
    run.regularizers = set()  # as if J had no regularizer: (b) has nothing to draw
    run.checkpoint = None  # no checkpoint: no fitted line
    run.scalars = {t: s for t, s in run.scalars.items() if not t.startswith("train/grad_")}
    plot_run.label_runs([run])
    assert set(axes_by_panel(plot_run.draw([run]))) == {"(a)", "(c)"}

    runs = [plot_run.load_run(linear_run), plot_run.load_run(linear_run)]
    plot_run.label_runs(runs)
    bars = axes_by_panel(plot_run.draw(runs))["(f)"]
    assert bars.get_title() == "(f) final test/mse per run"  # a regression sweep: the loss
    final = read_scalars(linear_run / "tensorboard")["test/mse"][-1][1]
    assert [p.get_height() for p in bars.patches] == pytest.approx([final, final])
