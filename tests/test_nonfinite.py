"""The non-finite guard: a NaN term is named with its step and stage; stop, skip or warn."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import hydra
import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from objectives.errors import ConfigError, NonFiniteObjective
from objectives.run.assemble import assemble, instantiate_all
from objectives.tasks.nonfinite import check_policy
from tests import nonfinite_terms
from tests.conftest import read_scalars

REPO = Path(__file__).resolve().parents[1]
# the line data (70 training rows) in batches of 10: 7 steps an epoch; input saliency off, as
# it evaluates the objective with gradients outside the training step
RUN = ["data.batch_size=10", "test=false", "callbacks.input_saliency=null"]


def fit_with_bad_term(
    cfg, first: int, last: int | None = None, callbacks: tuple = (), **term: object
) -> tuple[L.Trainer, object]:
    """Add the term `boom` (NaN on training calls first..last) and fit; call k is training
    step k − 1."""
    OmegaConf.update(
        cfg, "regularizer.boom",
        {"fn": {"_target_": "tests.nonfinite_terms.nan_on_calls", "_partial_": True,
                "first": first, "last": last, **term}, "weight": 1.0, "symbol": "boom(θ)"},
        force_add=True,
    )  # fmt: skip
    parts = assemble(cfg)
    trainer = hydra.utils.instantiate(
        cfg.trainer,
        callbacks=[*instantiate_all(cfg.callbacks), *callbacks],
        logger=instantiate_all(cfg.logger),
    )
    nonfinite_terms.CALLS["n"] = 0
    trainer.fit(parts.module, datamodule=parts.datamodule)
    return trainer, parts.module


def test_stop_names_the_bad_term_the_step_and_the_last_good_checkpoint(
    compose_cfg, tmp_path: Path
) -> None:
    cfg = compose_cfg(*RUN, "trainer.max_epochs=5")
    with pytest.raises(NonFiniteObjective) as err:
        fit_with_bad_term(cfg, first=16)  # call 16 = step 15, the second step of epoch 2
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("non-finite objective at train step 15 (epoch 2): raw/boom=nan")
    assert "raw/mse" not in message and "raw/l2" not in message  # those stayed finite
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"last good checkpoint: {last}" in message
    state = torch.load(last, weights_only=True)
    assert state["epoch"] == 1 and state["global_step"] == 14  # saved before the bad step
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_skip_leaves_the_bad_step_out_and_counts_it(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg(*RUN, "trainer.max_epochs=2", "task.nonfinite=skip")
    _, module = fit_with_bad_term(cfg, first=3, last=4)  # steps 2 and 3 of epoch 0
    scalars = read_scalars(tmp_path / "tensorboard")
    assert [v for _, v in scalars["train_epoch/skipped_steps"]] == [2.0, 0.0]
    assert all(math.isfinite(v) for _, v in scalars["train_epoch/objective"])
    assert all(torch.isfinite(p).all() for p in module.parameters())


class StateEachStep(L.Callback):
    """The weights and the optimizer state before and after every training batch."""

    def __init__(self) -> None:
        self.before: list[list[torch.Tensor]] = []
        self.after: list[list[torch.Tensor]] = []

    @staticmethod
    def snapshot(trainer: L.Trainer, module) -> list[torch.Tensor]:
        (optimizer,) = trainer.optimizers
        state = [v for p in module.parameters() for v in optimizer.state.get(p, {}).values()]
        return [t.detach().clone() for t in (*module.parameters(), *state)]

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.before.append(self.snapshot(trainer, module))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.after.append(self.snapshot(trainer, module))


@pytest.mark.parametrize("poison_gradients", [False, True])
def test_skip_undoes_the_bad_update_exactly(compose_cfg, poison_gradients: bool) -> None:
    """Weights and Adam's state are bit for bit what they were before a skipped step, the
    first step included (no state is left behind), whether the gradients are finite or NaN."""
    cfg = compose_cfg(*RUN, "trainer.max_epochs=1", "task.nonfinite=skip", "logger=none")
    states = StateEachStep()
    _, module = fit_with_bad_term(
        cfg, first=1, last=3, callbacks=(states,), poison_gradients=poison_gradients
    )  # steps 0 (the first, with no optimizer state yet), 1 and 2
    assert module.recorder.guard.skipped_in_fit == 3
    for step, (before, after) in enumerate(zip(states.before, states.after, strict=True)):
        same = len(before) == len(after) and all(
            torch.equal(b, a) for b, a in zip(before, after, strict=True)
        )
        assert same == (step < 3), step
    (optimizer,) = module.trainer.optimizers
    steps = {float(s["step"]) for s in optimizer.state.values()}
    assert steps == {7.0 - 3}  # Adam counted only the updates made


def test_skip_with_accumulation_skips_the_whole_optimizer_step(compose_cfg) -> None:
    """A bad micro-batch spoils the gradients accumulated with it: that optimizer step goes."""
    cfg = compose_cfg(*RUN, "trainer.max_epochs=1", "task.nonfinite=skip", "logger=none",
                      "++trainer.accumulate_grad_batches=2", "data.drop_last=false")  # fmt: skip
    states = StateEachStep()
    _, module = fit_with_bad_term(
        cfg, first=4, last=4, callbacks=(states,), poison_gradients=True
    )  # micro-batch 3: the second of optimizer step 1
    (optimizer,) = module.trainer.optimizers
    assert {float(s["step"]) for s in optimizer.state.values()} == {4.0 - 1}
    # batch 3 ends optimizer step 1 (micro-batches 2, 3): nothing changed over it
    assert all(torch.equal(b, a) for b, a in zip(states.before[2], states.after[3], strict=True))
    assert module.recorder.guard.skipped_in_fit == 1


READS = ("item", "tolist", "__bool__", "__float__", "__int__")
STEP_PATH = ("base.py", "recorder.py", "nonfinite.py", "masked_update.py", "term_means.py",
             "step_values.py", "objective.py", "term.py")  # fmt: skip


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_the_guard_reads_the_device_only_at_the_logging_interval(
    compose_cfg, monkeypatch, policy: str
) -> None:
    """Count every host read of a tensor made from the project's own code over 60 training
    steps with the logging interval at 20: a read a step would give 60 or more."""
    counted: list[str] = []
    source = str(REPO / "src" / "objectives")
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, __original=original, __name=name):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(source):
                counted.append(f"{__name} in {Path(caller).name}")
            return __original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counting)
    cfg = compose_cfg("data.batch_size=1", "data.drop_last=false", "test=false",
                      "trainer.max_epochs=1", "++trainer.limit_train_batches=60",
                      "++trainer.limit_val_batches=0", "trainer.log_every_n_steps=20",
                      "callbacks=none", "logger=none", f"task.nonfinite={policy}")  # fmt: skip
    fit_with_bad_term(cfg, first=10**9)  # never bad
    in_steps = [c for c in counted if c.split(" in ")[1] in STEP_PATH]
    # the intervals, the epoch end and fit end, the epoch means; skip: the first step once
    assert len(in_steps) <= 60 // 20 + 3, in_steps
    assert len(counted) < 20, counted  # the data's set-up reads a few too


def test_warn_goes_on_and_says_so_once(compose_cfg, caplog) -> None:
    cfg = compose_cfg(*RUN, "trainer.max_epochs=1", "task.nonfinite=warn")
    with caplog.at_level(logging.WARNING, logger="objectives.tasks.base"):
        trainer, _ = fit_with_bad_term(cfg, first=2, last=2)
    warnings = [r.getMessage() for r in caplog.records if "non-finite" in r.getMessage()]
    assert warnings == [
        "non-finite objective at train step 1 (epoch 0): raw/boom=nan, term/boom=nan, "
        "objective=nan (task.nonfinite=warn: going on)"
    ]
    assert trainer.global_step == 7


def test_an_unknown_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"task.nonfinite='halt' is not a policy; use stop\|skip"):
        check_policy("halt")


@pytest.mark.slow
def test_a_diverging_run_exits_with_one_line(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "train.py", "optimizer.lr=1e30", f"paths.log_dir={tmp_path}",
         "logger=csv", "trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in run.stderr
    assert errors[0].startswith("error: non-finite objective at train step 1 (epoch 0): raw/mse=")


def boom_overrides(rank: int | None) -> list[str]:
    """`regularizer.boom`: NaN (and NaN gradients) on training steps 2 and 3, on `rank` only."""
    fn = "+regularizer.boom.fn"
    return [f"{fn}._target_=tests.nonfinite_terms.nan_on_calls", f"{fn}._partial_=true",
            f"{fn}.first=3", f"{fn}.last=4", f"{fn}.rank={'null' if rank is None else rank}",
            f"{fn}.poison_gradients=true", "+regularizer.boom.weight=1.0",
            "+regularizer.boom.symbol=boom"]  # fmt: skip


@pytest.mark.slow
def test_skip_under_ddp_skips_on_every_rank_together(compose_cfg, tmp_path: Path) -> None:
    """NaN on rank 1 only: both ranks skip the same steps, their weights stay equal, and they
    equal one process on the global batch that skips those steps."""
    run = ["data=synthetic", "model=mlp", "optimizer=adam", "trainer.max_epochs=2", "test=false",
           "task.nonfinite=skip", "trainer.enable_progress_bar=false",
           "callbacks.rich_progress_bar=null", "trainer.enable_model_summary=false"]  # fmt: skip
    saver = ["+callbacks.save_weights._target_=tests.nonfinite_terms.SaveWeightsAtEnd",
             f"+callbacks.save_weights.folder={tmp_path}"]  # fmt: skip
    ddp = subprocess.run(
        [sys.executable, "train.py", "trainer=ddp_cpu", "data.batch_size=32", *run, *saver,
         *boom_overrides(rank=1), f"paths.log_dir={tmp_path / 'ddp'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"weights_rank{k}.json").read_text()) for k in (0, 1)]
    assert ranks[0] == ranks[1]  # bit for bit: no rank stepped alone
    (folder,) = (tmp_path / "ddp" / "train" / "runs").iterdir()
    skipped = read_scalars(folder / "tensorboard")["train_epoch/skipped_steps"]
    assert [v for _, v in skipped] == [2.0, 0.0]

    single = compose_cfg("data.batch_size=64", *run, *boom_overrides(rank=None), fast=False)
    nonfinite_terms.CALLS["n"] = 0
    from objectives.run.train import train  # here: the module imports Lightning's DDP bits

    train(single)
    (ckpt,) = (tmp_path / "checkpoints").glob("last.ckpt")
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    for name, value in ranks[0].items():
        want = state[f"model.{name}"]
        assert torch.allclose(torch.tensor(value), want, rtol=1e-5, atol=1e-6), name


@pytest.mark.slow
def test_stop_under_ddp_stops_every_rank_at_the_bad_step_of_another(tmp_path: Path) -> None:
    """NaN on rank 1 only: rank 0 (the one that prints) names rank 1's bad step and term,
    and both processes stop (neither waits forever for the other)."""
    run = subprocess.run(
        [sys.executable, "train.py", "trainer=ddp_cpu", "data=synthetic", "model=mlp",
         "data.batch_size=32", "test=false", "logger=csv", "trainer.enable_progress_bar=false",
         "callbacks.rich_progress_bar=null", "trainer.enable_model_summary=false",
         *boom_overrides(rank=1), f"paths.log_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr[-3000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr[-3000:]
    assert errors[0].startswith(
        "error: non-finite objective at train step 2 (epoch 0): raw/boom=nan"
    )


def test_skip_in_the_gan_undoes_only_the_bad_players_update(compose_cfg) -> None:
    """A NaN critic term on batch 1: the critic and its optimizer state stay as they were
    over that batch, the generator (a finite objective) still steps, and so does its
    average."""
    cfg = compose_cfg("experiment=ring_gan", "trainer.max_epochs=1", "task.eval_samples=100",
                      "++trainer.limit_train_batches=3", "++trainer.limit_val_batches=0",
                      "task.nonfinite=skip", "test=false", "logger=none")  # fmt: skip
    seen: list[dict[str, list[torch.Tensor]]] = []

    class PlayersEachStep(L.Callback):
        @staticmethod
        def snapshot(trainer, module) -> dict[str, list[torch.Tensor]]:
            gen_opt, disc_opt = trainer.optimizers
            parts = {"critic": (module.model.critic, disc_opt),
                     "generator": (module.model.generator, gen_opt)}  # fmt: skip
            taken = {
                name: [t.detach().clone() for t in (*net.parameters(),
                       *(v for p in net.parameters() for v in opt.state.get(p, {}).values()))]
                for name, (net, opt) in parts.items()
            }  # fmt: skip
            taken["average"] = [t.detach().clone() for t in module.generator_average.tensors()]
            return taken

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            seen.append(self.snapshot(trainer, module))

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            seen.append(self.snapshot(trainer, module))

    _, module = fit_with_bad_term(
        cfg, first=2, last=2, callbacks=(PlayersEachStep(),), poison_gradients=True
    )  # the critic's step on batch 1
    assert module.recorder.guard.skipped_in_fit == 1
    before, after = seen[2], seen[3]  # batch 1
    assert all(torch.equal(b, a) for b, a in zip(before["critic"], after["critic"], strict=True))
    for part in ("generator", "average"):
        assert not all(torch.equal(b, a) for b, a in zip(before[part], after[part], strict=True))
    assert all(torch.isfinite(t).all() for t in after["critic"])


def test_an_undone_step_puts_back_the_extra_tensors_too() -> None:
    """`undone_if` restores what the block changed beyond the optimizer (the GAN's average)."""
    from objectives.tasks.masked_update import undone_if

    weight = torch.nn.Parameter(torch.ones(3))
    weight.grad = torch.full((3,), float("nan"))
    extra = torch.zeros(2)
    optimizer = torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    for bad, changed in ((True, False), (False, True)):
        with undone_if(lambda b=bad: torch.tensor(b), optimizer, extra=[extra]):
            optimizer.step()
            extra.add_(1.0)
        assert torch.equal(extra, torch.ones(2) if changed else torch.zeros(2))
        assert bool(optimizer.state.get(weight)) == changed  # a first step leaves no state
        weight.grad = torch.ones(3)
