"""On a CUDA GPU: what a user's first `trainer=gpu` run relies on.

Skipped without a CUDA device (they are collected by the README's test command all the
same); `scripts/device_check.sh` runs them on a machine that has one, with the GPU runs
and the benchmark. Three things no CPU run can show:
- placement: the network, the in-memory data, the objective's epoch sums and the
  deferred step values all live on the GPU, and the event file still gets every value;
- bf16-mixed: every term of every preset, under autocast, close to its float32 value
  (the objective's terms are computed from bf16 activations; a term that overflowed or
  lost its sign would be far off);
- the closed-form L1/L2/elastic-net node gives autograd's gradient on the device.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from objectives.objective import ParameterPenalty
from objectives.regularizers import elastic_net, l1, l2
from objectives.run.assemble import assemble, build_trainer
from objectives.run.config import config_dir
from objectives.run.train import train
from tests.conftest import read_scalars
from tests.preset_data import files_for

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]
CUDA = torch.device("cuda", 0)
PRESETS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false"]  # fmt: skip


def test_a_gpu_run_keeps_network_data_and_sums_on_the_device(compose_cfg, tmp_path: Path):
    cfg = compose_cfg("experiment=seed_mlp", "trainer=gpu", "trainer.max_epochs=2", "test=false")
    seen: dict[str, torch.device] = {}

    class Placement(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            seen["batch"] = batch[0].device
            seen["weights"] = next(module.model.parameters()).device
            seen["sums"] = module.recorder.means[("train", "")].sums.device

    parts = assemble(cfg)
    trainer = build_trainer(cfg.trainer, [Placement()])
    trainer.fit(parts.module, datamodule=parts.datamodule)
    assert seen == {"batch": CUDA, "weights": CUDA, "sums": CUDA}
    assert all(t.device == CUDA for split in parts.datamodule.splits.values() for t in split)
    train(compose_cfg("experiment=seed_mlp", "trainer=gpu", "trainer.max_epochs=2", *QUIET))
    scalars = read_scalars(tmp_path / "tensorboard")
    assert len(scalars["train/objective"]) >= 2  # deferred step values reached the file
    assert all(math.isfinite(v) for _, v in scalars["val/objective"])


@pytest.mark.parametrize("preset", PRESETS)
def test_every_term_in_bf16_mixed_is_close_to_float32(
    compose_cfg, tmp_path: Path, preset: str
) -> None:
    """One validation pass of each preset's fresh network, float32 against bf16-mixed."""
    values = {}
    files = files_for(preset, tmp_path)
    for precision in ("32-true", "bf16-mixed"):
        cfg = compose_cfg(f"experiment={preset}", *files, "trainer=gpu",
                          f"trainer.precision={precision}",
                          "++trainer.limit_val_batches=1", "logger=none",
                          "callbacks=none")  # fmt: skip
        torch.manual_seed(0)
        parts = assemble(cfg)
        trainer = build_trainer(cfg.trainer)
        torch.manual_seed(1)  # the same evaluation noise (GAN, VAE) for both
        (values[precision],) = trainer.validate(parts.module, datamodule=parts.datamodule)
    terms = [k for k in values["32-true"] if "/raw/" in k or k.endswith("objective")]
    assert terms, values
    # a term is compared at the objective's scale: a term 1e-3 of J may lose more digits
    scale = max(abs(v) for k, v in values["32-true"].items() if k.endswith("objective"))
    for tag in terms:
        want, got = values["32-true"][tag], values["bf16-mixed"][tag]
        assert math.isclose(got, want, rel_tol=3e-2, abs_tol=1e-3 * max(1.0, scale)), tag


PENALTIES = {"l1": l1, "l2": l2, "elastic_net": functools.partial(elastic_net, l1_ratio=0.3)}


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_closed_form_penalties_give_autograds_gradient_on_the_device(name: str) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 64), nn.ReLU(), nn.Linear(64, 3)).to(CUDA)
    fn = PENALTIES[name]
    term = ParameterPenalty(name, fn, weight=0.01)
    term.bind(net)
    params = list(net.parameters())
    fused = torch.autograd.grad(0.01 * term.raw({}), params)
    plain = torch.autograd.grad(0.01 * fn(params), params)
    for got, want in zip(fused, plain, strict=True):
        assert got.device == CUDA
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-9)
    with torch.autocast("cuda", dtype=torch.bfloat16):  # bf16-mixed: parameters stay float32
        fused = torch.autograd.grad(0.01 * term.raw({}), params)
    for got, want in zip(fused, plain, strict=True):
        assert got.dtype == torch.float32 and torch.allclose(got, want, rtol=1e-6, atol=1e-9)
