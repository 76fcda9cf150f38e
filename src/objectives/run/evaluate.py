"""`python eval.py ckpt_path=...`: evaluate a checkpoint on its data's test split.

The checkpoint carries the resolved config that built its module (task, data, model,
objective), so nothing has to be re-typed; `data.*` overrides change the data only. The
data is scaled by the training split's statistics the checkpoint saved (and classes named
as it saved), not by figures recomputed from the files there now.
Checkpoints are read with `weights_only=True`: one that needs arbitrary code to load
is refused, never executed.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from objectives.run.checkpoints import load_checkpoint
from objectives.run.cli import run_job, start, usage, wants_help
from objectives.run.closing import metrics_line, objective_line
from objectives.run.config import config_dir
from objectives.run.console import route_lightning_logs
from objectives.run.run_folder import kept_only_if_trained, note_training_started

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    # deferred: torch and Lightning load here, so `eval.py --help` starts in a blink
    from objectives.run.assemble import assemble, build_trainer, instantiate_loggers
    from objectives.run.blas_threads import keep_cores_for_torch
    from objectives.run.resume import check_fits

    route_lightning_logs()
    checkpoint = load_checkpoint(cfg.ckpt_path)
    run_cfg = OmegaConf.create(checkpoint["run_config"])
    if cfg.get("data"):
        run_cfg.data = OmegaConf.merge(run_cfg.data, cfg.data)
    parts = assemble(run_cfg)
    check_fits(cfg.ckpt_path, checkpoint, parts.module.run_config, parts.module,
               fix="leave out the data overrides that change its sizes")  # fmt: skip
    parts.module.load_state_dict(checkpoint["state_dict"])
    # the training split's statistics and class names, as saved: never recomputed
    datamodule = parts.datamodule
    datamodule.load_state_dict(checkpoint.get(type(datamodule).__qualname__, {}))
    trainer = build_trainer(cfg.trainer, loggers=instantiate_loggers(cfg))
    keep_cores_for_torch()
    note_training_started()  # the checkpoint fits: from here on the folder is the run's
    # the figures are shown once, below, not in Lightning's table too
    results = trainer.test(parts.module, datamodule=parts.datamodule, verbose=False)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    if trainer.is_global_zero:
        lines = [
            objective_line("test", p, o.names, metrics, "checkpoint")
            for p, o in parts.module.objectives.items()
        ]
        lines.append(metrics_line("test", metrics, "checkpoint"))
        log.info("\n".join(line for line in lines if line))
    return metrics


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    run_job(evaluate, cfg)


KEYS = {
    "ckpt_path": "the checkpoint to evaluate (required); its saved config rebuilds the model",
    "data.*": "overrides of the checkpoint's data config, e.g. data.batch_size=256",
    "paths.log_dir": "where run folders go (default logs)",
}


def with_data_overrides_added(argv: list[str]) -> list[str]:
    """`data.batch_size=8` as `+data.batch_size=8`: eval.yaml's `data` is empty until the
    checkpoint's data config is merged in, so every key under it is new to Hydra."""
    return [f"+{a}" if a.startswith("data.") and "=" in a else a for a in argv]


def main() -> None:
    if wants_help(sys.argv):
        print(usage("eval", ["trainer", "logger"], KEYS))
        return
    sys.argv = with_data_overrides_added(sys.argv)
    with kept_only_if_trained(None):  # a refused evaluation leaves no folder
        start(hydra_main)


if __name__ == "__main__":
    main()
