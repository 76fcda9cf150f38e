"""Bad configuration stops before training with one line naming the key and the fix.

One table, run in-process the way `python train.py <overrides>` runs: the command-line
check that `cli.start` does before Hydra composes (unknown options, `null` groups), then
`train` on the composed config. Every case must fail with a one-line ConfigError before
anything is written. Two subprocess cases check the `error:` line and exit status 1.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from objectives.run.config import group_options
from objectives.run.overrides import check_command_line
from objectives.run.train import train
from tests.conftest import config_error_of

REPO = Path(__file__).resolve().parents[1]

REGULARIZERS = "elastic_net, gradient_penalty, l1, l2, r1"
LOSSES = ", ".join(group_options("loss"))  # every file of configs/loss/, sorted

# (case, command-line overrides, the message: a regex, re.escape'd where given as text)
CASES = [
    ("unknown loss", ["loss=foo"], re.escape(f"unknown loss 'foo'; choose one of: {LOSSES}")),
    ("unknown regularizer in a list", ["regularizer=[l1,foo]"],
     re.escape(f"unknown regularizer 'foo'; choose one of: {REGULARIZERS}")),
    ("unknown model", ["model=transformer"],
     re.escape(f"unknown model 'transformer'; choose one of: {', '.join(group_options('model'))}")),
    ("unknown data", ["data=imagenet"],
     r"^unknown data 'imagenet'; choose one of: .*\bdigits\b.*\bline\b"),
    ("unknown option in a sweep", ["-m", "loss=mse,foo"],
     re.escape(f"unknown loss 'foo'; choose one of: {LOSSES}")),
    ("unknown added group", ["+experiment=nope"], r"^unknown experiment 'nope'; choose one of"),
    ("a group set to null", ["experiment=null"],
     r"^experiment=null selects no experiment option; leave it out .* ~experiment"),
    ("loss does not fit regression", ["loss=cross_entropy"],
     re.escape("loss 'cross_entropy' reads logits, but task 'regression' produces only pred, "
               "target; choose a loss that reads those: "
               "loss=huber|log_cosh|mae|mse|quantile|smooth_l1")),
    ("loss does not fit classification", ["experiment=digits_cnn", "loss=mse"],
     re.escape("loss 'mse' reads pred, but task 'classification' produces only logits, "
               "target, binary_logit, binary_target; choose a loss that reads those: "
               "loss=bce|cross_entropy|focal|multi_margin")),
    ("task does not fit the data", ["data=digits"],
     re.escape("task regression reads real-valued targets, but data 'digits' has 10 class "
               "labels; choose task=classification with a classification loss, e.g. "
               "task=classification loss=cross_entropy")),
    ("data made for another task", ["data=synthetic_ranking"],
     re.escape("data 'synthetic_ranking' is made for task=ranking, not task=regression; "
               "choose task=ranking")),
    ("captions for another task", ["data=digits_captions", "task=classification",
                                   "loss=cross_entropy"],
     re.escape("data 'digits_captions' is made for task=clip, not task=classification; "
               "choose task=clip")),
    ("rollouts for another task", ["data=gym", "task=classification", "loss=cross_entropy"],
     re.escape("data 'gym' is made for task=rl, not task=classification; choose task=rl")),
    ("non-numeric weight", ["regularizer.l2.weight=abc"],
     re.escape("regularizer.l2: weight must be a number ≥ 0, got 'abc'; "
               "set it with regularizer.l2.weight=0.001")),
    ("negative weight", ["regularizer.l2.weight=-1"],
     re.escape("regularizer.l2: weight must be a finite number ≥ 0, got -1; "
               "set it with regularizer.l2.weight=0.001 (or drop the term)")),
    # composed outside a Hydra run, several data files leave it ???: none is named (the
    # command names the chosen one, below)
    ("missing required value", ["data=mnist"],
     re.escape("data.root is required; set it on the command line, e.g. data.root=<folder>")),
    ("data path does not exist", ["data=mnist", "data.root=/does/not/exist"],
     r"data\.root=/does/not/exist\b"),
    ("batch size 0", ["data.batch_size=0"], r"data\.batch_size\b.*\b0\b"),
    ("batch size above the data", ["data.batch_size=100000"],
     r"data\.batch_size=100000\b.*70 training rows"),
    ("hidden layer of size 0", ["model=mlp", "model.hidden=[0]"],
     re.escape("model.hidden=[0]: layer sizes must be positive integers; "
               "e.g. model.hidden=[64,32]")),
    ("negative hidden layer", ["model=mlp", "model.hidden=[-3]"],
     re.escape("model.hidden=[-3]: layer sizes must be positive integers")),
    ("cnn on non-image data", ["model=cnn"],
     re.escape("model CNN needs in_channels, height, width, num_classes, which the data does "
               "not provide (it provides in_features, out_features); choose a model made for "
               "this data: model=linear|mlp")),
    ("cnn deeper than the images", ["experiment=digits_cnn", "model.channels=[8,8,8,8]"],
     re.escape("model.channels=[8,8,8,8] makes 4 conv+pool blocks, so the cnn needs images "
               "of at least 16×16, but the data has 8×8; use at most 3 model.channels, e.g. "
               "model.channels=[8,8,8]")),
    ("flat model on images", ["experiment=digits_cnn", "model=linear"],
     r"^model Linear cannot read the data's 1×8×8 images \(.*\); "
     r"choose a model made for this data: model=cnn\|mlp\|resnet$"),
    ("negative learning rate", ["optimizer.lr=-1"],
     re.escape("optimizer.lr=-1 is refused by torch.optim.Adam (Invalid learning rate: -1); "
               "e.g. optimizer.lr=0.001")),
    ("non-numeric learning rate", ["optimizer.lr=abc"],
     re.escape("optimizer.lr=abc is refused by torch.optim.Adam (not a number); "
               "e.g. optimizer.lr=0.001")),
    ("non-numeric epochs", ["trainer.max_epochs=abc"],
     re.escape("trainer.max_epochs must be an integer, got 'abc'; e.g. trainer.max_epochs=10")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_config_stops_before_training_with_one_line(
    compose_cfg, tmp_path: Path, overrides: list[str], message: str
) -> None:
    def launch() -> None:  # as `python train.py <overrides>`: cli.start, then the job
        check_command_line(overrides, "train")
        train(compose_cfg(*overrides))

    text = config_error_of(launch)
    assert re.search(message, text), text
    written = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert not [n for n in written if n.endswith(".ckpt") or n.startswith("events.out")], written


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "args", "line"),
    [
        ("train.py", ["-m", "regularizer=[l1],[l1,nope]"],
         f"error: unknown regularizer 'nope'; choose one of: {REGULARIZERS}"),
        ("train.py", ["data=mnist"],
         "error: data.root is required (it is ??? in configs/data/mnist.yaml); "
         "set it on the command line, e.g. data.root=<folder>"),
        ("eval.py", [],
         "error: ckpt_path is required (it is ??? in configs/eval.yaml); "
         "set it on the command line, e.g. ckpt_path=<file>"),
    ],
    ids=["unknown option, before Hydra composes", "missing value", "eval without ckpt_path"],
)  # fmt: skip
def test_command_line_prints_one_error_line(
    tmp_path: Path, script: str, args: list[str], line: str
) -> None:
    run = subprocess.run(
        [sys.executable, script, *args, f"paths.log_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr[-2000:]
    assert [x for x in run.stderr.splitlines() if x.startswith("error:")] == [line]
    assert "Traceback" not in run.stderr
    assert not [p for p in tmp_path.rglob("*") if p.suffix == ".ckpt" or "events.out" in p.name]
