"""scripts/plot_losses.py: the loss atlas covers the whole registry and its table is right."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from types import ModuleType

import matplotlib.image as mpimg
import pytest
from omegaconf import OmegaConf

from objectives.run.config import config_dir, group_options
from tests.conftest import load_script as load_conftest_script

SCRIPT = Path(__file__).parents[1] / "scripts" / "plot_losses.py"

# The seed's comparison, written out here so the truths do not come from the script.
Y_TRUE = [1.0, 2.0, 3.0, 4.0, 5.0]
GOOD = [1.1, 2.1, 2.9, 4.2, 4.8]
BAD = [2.0, 1.0, 5.0, 2.0, 7.0]


def load_script() -> ModuleType:
    return load_conftest_script("plot_losses")


def parse_tables(text: str) -> dict[str, dict[str, str]]:
    """Every markdown table row as {loss name: {column header: cell}}."""
    rows: dict[str, dict[str, str]] = {}
    header: list[str] = []
    for line in text.splitlines():
        if not line.startswith("|"):
            header = []
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not header:
            header = cells
        elif not set(cells[0]) <= set("-: "):
            rows[cells[0].strip("`")] = dict(zip(header, cells, strict=True))
    return rows


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def atlas(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("atlas")
    return out, load_script().main(["--out", str(out)])


def test_writes_two_figures_and_a_table(atlas: tuple[Path, list[Path]]) -> None:
    out, written = atlas
    figures = [
        out / "figures" / f"loss_atlas_{kind}.png" for kind in ("regression", "classification")
    ]
    table = out / "loss_table.md"
    assert written == [*figures, table]
    for figure in figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert figure.stat().st_size > 10_000
        height, width, *_ = mpimg.imread(figure).shape
        assert height >= 400 and width >= 600
    text = table.read_text(encoding="utf-8")
    assert "scripts/plot_losses.py" in text
    rows = parse_tables(text)
    drawn = (("pred", "target"), ("logits", "target"), ("binary_logit", "binary_target"))
    for name in group_options("loss"):
        reads = tuple(OmegaConf.load(config_dir() / "loss" / f"{name}.yaml").get("reads", []))
        if reads in drawn:
            assert name in rows, f"loss {name} missing from the table"
        else:  # an embedding loss (z1, z2, ...) has no curve, but is listed as not shown
            assert name not in rows and f"- skipped loss {name}: it reads" in text, name


def test_regression_values_match_hand_computed_truths(atlas: tuple[Path, list[Path]]) -> None:
    rows = parse_tables((atlas[0] / "loss_table.md").read_text(encoding="utf-8"))
    truths = {
        "mse": {
            "good": mean([(p - y) ** 2 for p, y in zip(GOOD, Y_TRUE, strict=True)]),
            "bad": mean([(p - y) ** 2 for p, y in zip(BAD, Y_TRUE, strict=True)]),
        },
        "mae": {
            "good": mean([abs(p - y) for p, y in zip(GOOD, Y_TRUE, strict=True)]),
            "bad": mean([abs(p - y) for p, y in zip(BAD, Y_TRUE, strict=True)]),
        },
    }
    assert truths["mse"]["good"] == pytest.approx(0.022)
    assert truths["mse"]["bad"] == pytest.approx(2.8)
    assert truths["mae"]["good"] == pytest.approx(0.14)
    assert truths["mae"]["bad"] == pytest.approx(1.6)
    for name, columns in truths.items():
        for column, truth in columns.items():
            assert float(rows[name][column]) == pytest.approx(truth, abs=1e-4), (name, column)


def test_classification_values_at_zero_margin(atlas: tuple[Path, list[Path]]) -> None:
    rows = parse_tables((atlas[0] / "loss_table.md").read_text(encoding="utf-8"))
    # Two equal logits: p = 1/2, so CE = ln 2; hinge max(0, 1 − 0) over 2 classes = 1/2.
    assert float(rows["cross_entropy"]["z = 0"]) == pytest.approx(math.log(2.0), abs=1e-4)
    assert float(rows["multi_margin"]["z = 0"]) == pytest.approx(0.5, abs=1e-4)
    # BCE on one logit and CE on logits (0, z) are the same loss.
    for z in ("z = -2", "z = 0", "z = 2"):
        assert rows["bce"][z] == rows["cross_entropy"][z]


def test_a_new_loss_file_shows_up_and_an_odd_one_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(config_dir() / "loss", configs / "loss")
    (configs / "loss" / "mse_sum.yaml").write_text(
        "# @package loss.mse_sum\n"
        "fn: {_target_: torch.nn.MSELoss, reduction: sum}\n"
        "reads: [pred, target]\nweight: 1.0\nsymbol: sum((ŷ − y)²)\n",
        encoding="utf-8",
    )
    (configs / "loss" / "odd.yaml").write_text(
        "# @package loss.odd\n"
        "fn: {_target_: torch.nn.MSELoss}\n"
        "reads: [embedding, target]\nweight: 1.0\nsymbol: odd\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("OBJECTIVES_CONFIG_DIR", str(configs))
    load_script().main(["--out", str(tmp_path / "out")])
    assert "skipped loss odd" in capsys.readouterr().out
    rows = parse_tables((tmp_path / "out" / "loss_table.md").read_text(encoding="utf-8"))
    assert "odd" not in rows
    sum_good = sum((p - y) ** 2 for p, y in zip(GOOD, Y_TRUE, strict=True))
    assert float(rows["mse_sum"]["good"]) == pytest.approx(sum_good, abs=1e-4)
