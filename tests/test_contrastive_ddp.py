"""Contrastive training on two processes contrasts against the global batch, and its
gradients are exactly the single-process gradients on that batch (no world-size factor,
no negatives left on one device).

Two gloo processes (`ddp_spawn`, so the test process itself is not re-run) each take 32
digits; one process takes the same 64. Augmentations are off (`augment=none`) so both
runs see identical views.
"""

from __future__ import annotations

import copy
from pathlib import Path

import hydra
import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from objectives.run.assemble import assemble

RUN = ["experiment=digits_simclr", "augment=none", "model.dropout=0", "trainer.max_steps=1",
       "callbacks=none", "logger=none", "data.shuffle=false", "test=false",
       "trainer.num_sanity_val_steps=0", "+trainer.limit_val_batches=0"]  # fmt: skip


class RecordFirstStep(Callback):
    """Saves the loss and the (already averaged) gradients of the first step, per rank."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
        loss = module.step_value.total.detach().clone()
        torch.save({"grads": grads, "loss": loss},
                   Path(self.folder) / f"rank{trainer.global_rank}.pt")  # fmt: skip


def fit_first_step(cfg, module, datamodule, folder: Path, **trainer_args) -> None:
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg.pop("plugins", None)
    trainer_cfg.update(trainer_args)
    trainer = hydra.utils.instantiate(trainer_cfg, callbacks=[RecordFirstStep(str(folder))],
                                      logger=False, enable_checkpointing=False)  # fmt: skip
    trainer.fit(module, datamodule=datamodule)


@pytest.mark.slow
def test_two_processes_give_the_single_process_gradients_and_loss(
    compose_cfg, tmp_path: Path
) -> None:
    L.seed_everything(0)
    cfg = compose_cfg(*RUN, "data.batch_size=32", fast=False)
    parts = assemble(cfg)
    single_module = copy.deepcopy(parts.module)

    (tmp_path / "ddp").mkdir()
    fit_first_step(cfg, parts.module, parts.datamodule, tmp_path / "ddp",
                   accelerator="cpu", devices=2, strategy="ddp_spawn")  # fmt: skip
    single_cfg = compose_cfg(*RUN, "data.batch_size=64", fast=False)
    (tmp_path / "single").mkdir()
    fit_first_step(single_cfg, single_module, assemble(single_cfg).datamodule,
                   tmp_path / "single", accelerator="cpu", devices=1)  # fmt: skip

    single = torch.load(tmp_path / "single" / "rank0.pt", weights_only=True)
    for rank in (0, 1):
        ddp = torch.load(tmp_path / "ddp" / f"rank{rank}.pt", weights_only=True)
        # the global-batch loss on every process, not a per-process or world-size-scaled one
        torch.testing.assert_close(ddp["loss"], single["loss"], rtol=1e-5, atol=1e-6)
        assert ddp["grads"].keys() == single["grads"].keys()
        for name, grad in single["grads"].items():
            torch.testing.assert_close(ddp["grads"][name], grad, rtol=1e-5, atol=1e-5, msg=name)
