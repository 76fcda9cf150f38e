"""task=clip: the symmetric InfoNCE loss against independent truths (log N, a hand-written
cross-entropy), the clamped temperature, the captioned digits, one run end to end, the
two-process gradient, and the refusals before training."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from objectives.data.captions import NAMES, TEMPLATES, fill
from objectives.losses.clip import ClipLoss
from objectives.objective import build_objective
from objectives.objective.term import ParameterPenalty
from objectives.run.assemble import assemble
from objectives.run.train import train
from tests.conftest import config_error_of, read_scalars

REPO = Path(__file__).resolve().parents[1]
LN_100 = math.log(100.0)
QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false"]  # fmt: skip
SHORT = ["experiment=digits_clip", "trainer.max_epochs=2", "++trainer.limit_train_batches=3",
         "++trainer.limit_val_batches=1"]  # fmt: skip


# -- the loss --------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_identical_features_everywhere_give_log_n(n: int) -> None:
    """Every image and every text the same vector: all N² logits equal, so each of the 2N
    softmaxes is uniform over N and each cross-entropy is log N, whatever the scale."""
    loss = ClipLoss()
    same = torch.tensor([0.3, -1.2, 2.0, 0.5]).expand(n, 4)
    assert loss(same, same).item() == pytest.approx(math.log(n), abs=1e-6)
    with torch.no_grad():
        loss.logit_scale.fill_(LN_100)
    text = 5.0 * same  # another length, the same direction: the same cosines
    assert loss(same, text).item() == pytest.approx(math.log(n), abs=1e-6)


def test_the_loss_is_the_hand_written_symmetric_cross_entropy() -> None:
    images = [[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [-1.0, 2.0, 1.0], [0.0, 0.3, -0.7]]
    texts = [[0.9, 0.1, 1.5], [0.0, -1.0, 0.2], [-2.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    scale = 1 / 0.07

    def cosine(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    logits = [[scale * cosine(i, t) for t in texts] for i in images]
    n = len(images)
    image_to_text = [-math.log(math.exp(logits[i][i]) / sum(math.exp(v) for v in logits[i]))
                     for i in range(n)]  # fmt: skip
    text_to_image = [
        -math.log(math.exp(logits[j][j]) / sum(math.exp(logits[i][j]) for i in range(n)))
        for j in range(n)
    ]
    want = (sum(image_to_text) / n + sum(text_to_image) / n) / 2
    got = ClipLoss()(torch.tensor(images, dtype=torch.float64), torch.tensor(texts))
    assert got.item() == pytest.approx(want, rel=1e-5)
    assert ClipLoss().logit_scale.item() == pytest.approx(math.log(1 / 0.07), rel=1e-7)


def test_the_logit_scale_runs_to_ln_100_and_never_past_it(compose_cfg) -> None:
    """Perfectly aligned pairs (image i = text i, other pairs at cosine 0.8): the loss falls
    as the scale grows, so Adam with a large learning rate (steps of about lr, however small
    the gradient gets) drives it up; the term clamps it after every step."""
    objective = build_objective(compose_cfg("loss=clip", "regularizer=[]").loss)
    (group,) = objective.own_parameter_groups()
    assert group["weight_decay"] == 0.0 and group["name"] == "loss.clip"
    (scale,) = group["params"]
    optimizer = torch.optim.Adam([scale], lr=0.5)
    # float64: near the clamp the loss is ~1e-7, below float32's rounding of the cosines
    aligned = torch.cat([torch.ones(8, 1), 0.5 * torch.eye(8)], dim=1).double()
    seen = []
    for step in range(20):
        optimizer.zero_grad()
        objective({"image_features": aligned, "text_features": aligned}, step=step).total.backward()
        assert float(scale.grad) < 0  # larger is always better on these pairs
        optimizer.step()
        objective.after_step()  # what ObjectiveModule.optimizer_step calls
        seen.append(scale.item())
        assert seen[-1] <= LN_100
    assert seen[-1] == pytest.approx(LN_100, abs=1e-6)
    assert seen[0] < LN_100  # it got there by steps, not at once


# -- the data --------------------------------------------------------------------------------
def test_every_digit_gets_a_caption_naming_it_the_same_in_every_run(compose_cfg) -> None:
    datamodule = assemble(compose_cfg("experiment=digits_clip")).datamodule
    images, labels, tokens, lengths = datamodule.split("train")
    vocabulary = datamodule.vocabulary

    def text(row: int) -> str:
        return "".join(vocabulary[t - 1] for t in tokens[row, : lengths[row]].tolist())

    captions = [text(row) for row in range(len(labels))]
    for caption, label in zip(captions, labels.tolist(), strict=True):
        assert caption in {fill(t, label) for t in TEMPLATES}, (caption, label)
        assert NAMES[label] in caption or str(label) in caption
    assert len(set(captions)) == 10 * len(TEMPLATES)  # every template, for every digit
    assert (tokens[torch.arange(tokens.shape[1]) >= lengths[:, None]] == 0).all()  # padding
    again = assemble(compose_cfg("experiment=digits_clip")).datamodule.split("train")
    assert torch.equal(again[2], tokens) and torch.equal(again[0], images)
    other = assemble(compose_cfg("experiment=digits_clip", "data.source.seed=1")).datamodule
    assert not torch.equal(other.split("train")[2], tokens)  # the seed draws the templates
    assert datamodule.prompts[7] == "a handwritten 7"
    assert datamodule.dims["context_length"] == 32


# -- end to end ------------------------------------------------------------------------------
class ScaleAfterEveryStep(Callback):
    """Reads the logit scale after every optimizer step (and its clamp), into `seen`."""

    seen: ClassVar[list[float]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seen.append(module.objective.terms[0].fn.logit_scale.item())


def test_a_short_run_logs_the_term_the_temperature_and_the_retrieval_figures(
    compose_cfg, tmp_path: Path
) -> None:
    """A logit scale with its own large learning rate: read after every step, it stays
    within [0, ln 100]; it is in the checkpoint, and no weight decay or L2 reaches it."""
    seen = ScaleAfterEveryStep.seen
    seen.clear()
    watch = f"+callbacks.scale_watch._target_={__name__}.ScaleAfterEveryStep"
    cfg = compose_cfg(*SHORT, "loss.clip.lr=3.0", "trainer.log_every_n_steps=1",
                      "regularizer=[l2]", watch)  # fmt: skip
    metrics = train(cfg)
    assert len(seen) == 6 and all(0.0 <= v <= LN_100 for v in seen), seen
    scalars = read_scalars(tmp_path / "tensorboard")
    for tag in ["train/objective", "train/term/clip", "train/raw/clip", "train/raw/l2",
                "val/objective", "train/logit_scale", "train/temperature", "val/zero_shot_acc",
                "val/i2t_top1", "val/t2i_top1", "test/zero_shot_acc", "test/i2t_top1",
                "test/t2i_top1"]:  # fmt: skip
        assert tag in scalars, tag
    logged = [v for _, v in scalars["train/logit_scale"]]
    assert len(logged) == 6 and all(0.0 <= v <= LN_100 + 1e-6 for v in logged)
    for (_, s), (_, t) in zip(scalars["train/logit_scale"], scalars["train/temperature"],
                              strict=True):  # fmt: skip
        assert t == pytest.approx(math.exp(-s), rel=1e-5)
    assert scalars["val/zero_shot_acc"][0][0] == 0  # the untrained towers, before training
    assert len(scalars["val/zero_shot_acc"]) == 3
    for key in ("test/zero_shot_acc", "test/i2t_top1", "test/t2i_top1"):
        assert 0.0 <= metrics[key] <= 1.0
    (last,) = (tmp_path / "checkpoints").glob("last.ckpt")
    state = torch.load(last, weights_only=True)["state_dict"]
    assert float(state["objective.terms.0.fn.logit_scale"]) == pytest.approx(seen[-1])


def test_the_logit_scale_has_its_own_group_and_no_penalty_reads_it(compose_cfg) -> None:
    module = assemble(compose_cfg("experiment=digits_clip", "regularizer=[l2]")).module
    scale = module.objective.terms[0].fn.logit_scale
    groups = module.parameter_groups()
    assert [g["name"] for g in groups] == ["network", "loss.clip"]
    assert groups[1]["params"] == [scale] and groups[1]["weight_decay"] == 0.0
    assert all(p is not scale for p in groups[0]["params"])
    (penalty,) = [t for t in module.objective.terms if isinstance(t, ParameterPenalty)]
    assert all(p is not scale for p in penalty._parameters_read)
    assert len(module.state_dict()) == len(dict(module.named_parameters()))  # no duplicate


# -- refusals, one line each, before training ------------------------------------------------
def test_a_caption_longer_than_the_text_encoder_reads_is_refused_by_name(compose_cfg) -> None:
    longest = max((fill(t, d) for t in TEMPLATES for d in range(10)), key=len)
    message = config_error_of(
        lambda: assemble(compose_cfg("experiment=digits_clip", "data.context_length=12"))
    )
    caption = message.split("'")[1]
    assert len(caption) == len(longest) == 20
    assert message == (
        f"caption '{caption}' has 20 characters, more than the text encoder reads "
        "(data.context_length=12); raise data.context_length to 20 or shorten "
        "data.source.templates"
    )


@pytest.mark.parametrize(
    ("override", "start"),
    [
        ("data.source.templates=[]", "data.source.templates is empty: every image needs a caption"),
        ("data.source.templates=['a digit']", "data.source.templates[0]='a digit' names no digit"),
        ("data.source.templates=['{name}','the {number}']",
         "data.source.templates[1]='the {number}' has the placeholder {number}"),
        ("data.source.templates=['the {name']", "data.source.templates[0]='the {name' is not a "),
        ("data.source.prompt='a digit'", "data.source.prompt='a digit' names no digit"),
        ("loss.clip.fn.init_temperature=0.001", "loss.clip.fn.init_temperature=0.001 starts"),
        ("loss.clip.fn.init_temperature=0", "loss.clip.fn.init_temperature must be a number > 0"),
        ("model=cnn", "task clip needs an image and a text encoder, but model CNN reads images"),
        ("model.kernel_size=4", "model.kernel_size=4 must be odd"),
    ],
)  # fmt: skip
def test_bad_clip_settings_stop_before_training_in_one_line(
    compose_cfg, override: str, start: str
) -> None:
    message = config_error_of(lambda: assemble(compose_cfg("experiment=digits_clip", override)))
    assert message.startswith(start), message


def test_clip_needs_captioned_data(compose_cfg) -> None:
    message = config_error_of(
        lambda: assemble(compose_cfg("experiment=digits_clip", "data=digits", "model=cnn"))
    )
    assert message == (
        "task clip needs images paired with captions; choose captioned data, "
        "e.g. data=digits_captions"
    )


# -- slow: the recipe's figures, and two processes -------------------------------------------
@pytest.mark.slow
def test_the_recipe_classifies_test_digits_by_their_nearest_caption(compose_cfg) -> None:
    metrics = train(compose_cfg("experiment=digits_clip", *QUIET, fast=False))
    assert metrics["test/zero_shot_acc"] >= 0.9
    assert metrics["test/i2t_top1"] >= 0.9 and metrics["test/t2i_top1"] >= 0.9


def _final_weights(folder: Path) -> dict[str, torch.Tensor]:
    (last,) = folder.rglob("last.ckpt")
    return torch.load(last, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_two_processes_take_the_one_process_gradient(compose_cfg, tmp_path: Path) -> None:
    """One plain SGD step of lr 1 from the same start (w − ∇J): two gloo processes of 32 rows
    give the weights, logit scale included, that one process gets on the 64 rows, so each
    contrasts against the global batch and no world-size factor is left."""
    recipe = ["experiment=digits_clip", "optimizer=sgd", "optimizer.lr=1.0",
              "optimizer.momentum=0.0", "data.shuffle=false", "trainer.max_steps=1",
              "++trainer.limit_val_batches=1", "test=false", "logger=none"]  # fmt: skip
    ddp = subprocess.run(
        [sys.executable, "train.py", "trainer=ddp_cpu", *recipe, *QUIET, "data.batch_size=32",
         f"paths.log_dir={tmp_path / 'ddp'}"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert (
        "Batch: 32 rows a device × 2 devices × 1 accumulated = 64 rows" in ddp.stdout + ddp.stderr
    )
    train(compose_cfg(*recipe, *QUIET, "data.batch_size=64", fast=False))
    single, distributed = _final_weights(tmp_path / "checkpoints"), _final_weights(tmp_path / "ddp")
    assert single.keys() == distributed.keys()
    start = math.log(1 / 0.07)
    assert abs(float(single["objective.terms.0.fn.logit_scale"]) - start) > 1e-3  # it moved
    for name, want in single.items():
        torch.testing.assert_close(distributed[name], want, rtol=0, atol=1e-5, msg=name)
