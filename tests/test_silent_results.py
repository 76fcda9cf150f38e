"""Runs that used to end with exit status 0 and a wrong result now stop before training
with one line: a Bernoulli VAE on data outside [0, 1] (J fell to −10⁴ nats and below), CTC
with a blank that is also a label (that label could never be output), and CTC where
`zero_infinity` leaves out every sequence (J = 0 and a "best checkpoint")."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from objectives.run.assemble import assemble
from objectives.run.train import train
from tests.conftest import config_error_of

REPO = Path(__file__).resolve().parents[1]
QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false", "test=false", "logger=none"]  # fmt: skip
VAE_STANDARDISED = ["experiment=digits_vae", "data.standardize_inputs=true"]
TINY_CTC = ["experiment=digit_strings_ctc", "data.source.n_train=64", "data.source.n_val=64",
            "data.source.n_test=64", "model.channels=[4,8]", "model.hidden=8",
            "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0"]  # fmt: skip
# a next-token language model read by CTC: one output a token, so every sequence with two
# equal tokens side by side (all of them, in 64 tokens of an 8-state chain) is unalignable
CTC_LM = ["experiment=markov_lm", "loss=ctc", "loss.ctc.fn.zero_infinity=true",
          "data.source.n_sequences=200", "model.hidden=8", "model.embedding_dim=4",
          "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0"]  # fmt: skip


def no_checkpoint(folder: Path) -> bool:
    return not list(folder.rglob("*.ckpt"))


def test_a_bernoulli_vae_on_data_outside_0_1_is_refused_before_training(
    compose_cfg, tmp_path: Path
) -> None:
    message = config_error_of(lambda: train(compose_cfg(*VAE_STANDARDISED, *QUIET)))
    assert re.fullmatch(
        r"loss\.recon_bernoulli is the likelihood of inputs in \[0, 1\], but the train inputs "
        r"of data 'digits' range over \[-\d[\d.]*, \d[\d.]*\] \(the objective would fall "
        r"without bound\); use data\.standardize_inputs=false \(standardised inputs are not "
        r"in \[0, 1\]\), or a Gaussian decoder: loss=\[recon_gaussian,kl\]",
        message,
    ), message
    assert no_checkpoint(tmp_path)


def test_a_gaussian_vae_takes_the_same_data(compose_cfg) -> None:
    parts = assemble(compose_cfg(*VAE_STANDARDISED, "loss=[recon_gaussian,kl]", *QUIET))
    parts.module.check_data(parts.datamodule)  # no error: any real input has a density
    parts = assemble(compose_cfg("experiment=digits_vae", *QUIET))
    parts.module.check_data(parts.datamodule)  # the digits as they come are in [0, 1]


@pytest.mark.slow
def test_the_command_line_prints_the_vae_refusal_as_one_line(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "train.py", *VAE_STANDARDISED, *QUIET, f"paths.log_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr[-3000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "loss.recon_bernoulli is the likelihood" in errors[0]
    assert "Traceback" not in run.stderr
    assert no_checkpoint(tmp_path)


def test_a_ctc_blank_that_is_also_a_label_is_refused(compose_cfg, tmp_path: Path) -> None:
    message = config_error_of(lambda: train(compose_cfg(*TINY_CTC, "loss.ctc.fn.blank=3", *QUIET)))
    assert message == (
        "loss.ctc.fn.blank=3 is also a label of data 'digit_strings' (its labels are 1..10): "
        "CTC reads the blank as no label, so the model could never output 3; use "
        "loss.ctc.fn.blank=0, a class no label uses"
    )
    assert no_checkpoint(tmp_path)


def test_a_ctc_blank_past_the_classes_is_refused_when_the_task_is_built(compose_cfg) -> None:
    message = config_error_of(lambda: assemble(compose_cfg(*TINY_CTC, "loss.ctc.fn.blank=11")))
    assert message == (
        "loss.ctc.fn.blank=11 is not one of the model's 11 classes (0..10); use "
        "loss.ctc.fn.blank=0, the class the data keeps for it"
    )


def test_ctc_with_zero_infinity_and_no_alignable_sequence_is_refused(
    compose_cfg, tmp_path: Path
) -> None:
    message = config_error_of(lambda: train(compose_cfg(*CTC_LM, *QUIET)))
    assert message.startswith(
        "140 of the 140 train sequences of data 'markov_text' cannot be aligned by CTC"
    ), message
    assert (
        "with loss.ctc.fn.zero_infinity=true every one is left out, so the train objective is "
        "0 whatever the model" in message
    )
    assert no_checkpoint(tmp_path)
