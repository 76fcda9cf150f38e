"""The sequence task end to end, as the other tasks are checked: every term logged raw and
weighted in TensorBoard, the metrics against their definitions, CTC's impossible
alignments refused or counted, the non-finite guard, resume and sweeps."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from objectives.data.digit_strings import digit_strings
from objectives.data.markov_text import markov_text
from objectives.errors import NonFiniteObjective
from objectives.losses.sequence import PAD
from objectives.run.train import train
from tests.conftest import config_error_of, read_scalars

REPO = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false"]  # fmt: skip
TINY_LM = ["experiment=markov_lm", "data.source.n_sequences=200", "data.source.length=16",
           "model.hidden=16", "model.embedding_dim=8",
           "trainer.num_sanity_val_steps=0"]  # fmt: skip
# digit strings of 1-5 digits read at one time step a digit: a string with two equal digits
# side by side cannot be aligned (CTC needs a blank between them)
ONE_STEP_A_DIGIT = ["experiment=digit_strings_ctc", "data.source.n_train=64",
                    "data.source.n_val=64", "data.source.n_test=64", "model.channels=[4,8,8]",
                    "model.hidden=8", "model.time_stride=8", "trainer.max_epochs=1",
                    "trainer.num_sanity_val_steps=0"]  # fmt: skip


def last_value(scalars: dict, tag: str) -> float:
    return scalars[tag][-1][1]


@pytest.mark.slow
def test_every_term_is_logged_raw_and_weighted_and_the_entropy_gap_is_nll_minus_h(
    compose_cfg, tmp_path: Path
) -> None:
    eps = 0.1
    train(compose_cfg(*TINY_LM, f"loss.token_ce.fn.label_smoothing={eps}",
                      "trainer.log_every_n_steps=1", "test=false"))  # fmt: skip
    scalars = read_scalars(tmp_path / "tensorboard")
    for stage in ("train", "train_epoch", "val"):
        for name in ("token_ce", "label_smoothing"):
            assert f"{stage}/raw/{name}" in scalars and f"{stage}/term/{name}" in scalars
    assert all(v == 0 for _, v in scalars["val/term/label_smoothing"])  # shown, not added
    assert all(v > 0 for _, v in scalars["val/raw/label_smoothing"])
    assert last_value(scalars, "val/objective") == pytest.approx(
        last_value(scalars, "val/term/token_ce"), rel=1e-6
    )
    # the smoothing part is what smoothing adds: with every row 16 tokens long the epoch
    # mean is the token mean, so token_ce = (1 − ε)·NLL + smoothing part, NLL = log ppl
    nll = math.log(last_value(scalars, "val/perplexity"))
    assert last_value(scalars, "val/raw/token_ce") == pytest.approx(
        (1 - eps) * nll + last_value(scalars, "val/raw/label_smoothing"), rel=1e-4
    )
    entropy = markov_text(n_sequences=200, length=16).entropy_rate
    assert last_value(scalars, "val/nats_above_entropy") == pytest.approx(nll - entropy, abs=1e-5)


def test_unalignable_strings_are_refused_before_training_in_one_line(compose_cfg) -> None:
    message = config_error_of(lambda: train(compose_cfg(*ONE_STEP_A_DIGIT, *QUIET)))
    assert "train sequences of data 'digit_strings' cannot be aligned by CTC" in message
    assert "loss.ctc.fn.zero_infinity=true" in message


@pytest.mark.slow
def test_with_zero_infinity_they_are_left_out_and_counted(compose_cfg, caplog) -> None:
    metrics = train(compose_cfg(*ONE_STEP_A_DIGIT, *QUIET, "loss.ctc.fn.zero_infinity=true"))
    source = digit_strings(n_train=64, n_val=64, n_test=64)
    for split in ("val", "test"):
        targets = source.splits[split][2]
        repeats = ((targets[:, 1:] == targets[:, :-1]) & (targets[:, 1:] != PAD)).any(1)
        assert repeats.any()  # the check would otherwise prove nothing
        assert metrics[f"{split}/unalignable"] == int(repeats.sum())
    assert math.isfinite(metrics["val/objective"])
    assert "cannot be aligned by CTC" in caplog.text and "left out (zero_infinity)" in caplog.text


def test_per_position_cross_entropy_needs_one_step_a_target_position(compose_cfg) -> None:
    fixed = ["data.source.min_digits=5", "loss=token_ce"]
    message = config_error_of(
        lambda: train(compose_cfg(*ONE_STEP_A_DIGIT, *fixed, "model.time_stride=2", *QUIET))
    )
    assert "gives 20 steps for the 5 target positions" in message
    metrics = train(compose_cfg(*ONE_STEP_A_DIGIT, *fixed, *QUIET))
    assert metrics["val/cer"] >= 0 and metrics["val/perplexity"] > 1


def test_a_diverging_run_is_stopped_by_the_guard_naming_the_term(compose_cfg) -> None:
    cfg = compose_cfg(*ONE_STEP_A_DIGIT, "model.time_stride=2", "optimizer.lr=1e30", *QUIET,
                      "logger=none")  # fmt: skip
    with pytest.raises(NonFiniteObjective, match="non-finite objective") as err:
        train(cfg)
    assert "raw/ctc" in str(err.value)


@pytest.mark.slow
def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(
    compose_cfg, tmp_path: Path
) -> None:
    last = tmp_path / "checkpoints" / "last.ckpt"
    train(compose_cfg(*TINY_LM, *QUIET, "trainer.max_epochs=1", "test=false"))
    train(compose_cfg(*TINY_LM, *QUIET, "trainer.max_epochs=3", f"ckpt_path={last}",
                      "test=false"))  # fmt: skip
    resumed = torch.load(last, weights_only=True)
    train(compose_cfg(*TINY_LM, *QUIET, "trainer.max_epochs=3", "test=false"))
    whole = torch.load(last, weights_only=True)
    assert resumed["epoch"] == whole["epoch"] == 2
    for name, want in whole["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], want, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_a_sweep_over_the_smoothing_summarises_both_jobs_by_the_error_rate(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "train.py", "-m", *TINY_LM, *QUIET, "trainer.max_epochs=1",
         "loss.token_ce.fn.label_smoothing=0.0,0.2", f"paths.log_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    with (sweep / "summary.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert [r["overrides"] for r in rows] == [
        "loss.token_ce.fn.label_smoothing=0.0",
        "loss.token_ce.fn.label_smoothing=0.2",
    ]
    assert all(0 <= float(r["test/cer"]) <= 1 for r in rows)
    smoothing = [float(r["test/raw/label_smoothing"]) for r in rows]
    assert smoothing[0] == 0 < smoothing[1]
    assert "test/cer" in (sweep / "summary.md").read_text()


def test_epoch_means_are_means_over_tokens_not_rows(compose_cfg) -> None:
    """Strings of 1-5 digits in batches of 16: val/raw/ctc is Σ CTC / Σ real tokens over the
    whole validation split (torch's summed ctc_loss), not a mean of batch means."""
    import torch.nn.functional as F

    from objectives.run.assemble import assemble, build_trainer

    cfg = compose_cfg("experiment=digit_strings_ctc", "data.source.n_train=64",
                      "data.source.n_val=80", "data.source.n_test=16", "data.batch_size=16",
                      "logger=none", "callbacks=none")  # fmt: skip
    torch.manual_seed(0)
    parts = assemble(cfg)
    (logged,) = build_trainer(cfg.trainer).validate(parts.module, datamodule=parts.datamodule)
    inputs, input_lengths, targets = parts.datamodule.split("val")[:3]
    model = parts.module.model.eval()
    with torch.no_grad():
        logits, lengths = model(inputs, input_lengths)
    real = targets != PAD
    total = F.ctc_loss(logits.log_softmax(-1).transpose(0, 1), targets[real],
                       lengths, real.sum(1), blank=0, reduction="sum")  # fmt: skip
    token_mean = float(total / real.sum())
    rows_mean = sum(  # what weighting each batch by its rows would give
        float(
            F.ctc_loss(logits[i : i + 16].log_softmax(-1).transpose(0, 1),
                       targets[i : i + 16][real[i : i + 16]], lengths[i : i + 16],
                       real[i : i + 16].sum(1), blank=0, reduction="sum")
            / real[i : i + 16].sum()
        )
        for i in range(0, 80, 16)
    ) / 5  # fmt: skip
    assert logged["val/raw/ctc"] == pytest.approx(token_mean, rel=1e-5)
    assert abs(rows_mean - token_mean) > 1e-4 * token_mean  # the test can tell them apart
