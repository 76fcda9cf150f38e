"""`python eval.py ckpt_path=...`: evaluate a checkpoint on its data's test split.

The checkpoint carries the resolved config that built its module (task, data, model,
objective), so nothing has to be re-typed; `data.*` overrides change the data only.
Checkpoints are read with `weights_only=True`: one that needs arbitrary code to load
is refused, never executed.
"""

from __future__ import annotations

import logging
import pickle
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from objectives.cli import run_job, start, usage, wants_help
from objectives.config import config_dir
from objectives.errors import ConfigError

log = logging.getLogger(__name__)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely; one clear error for a missing, foreign or unsafe file."""
    import torch  # imported here, as in train.py: `eval.py --help` stays fast

    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"checkpoint {path} does not exist; pass ckpt_path=<run>/checkpoints/last.ckpt"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"checkpoint {path} needs arbitrary code to load and was refused ({first}); "
            "only load checkpoints you trust, and re-save them as plain state dicts"
        ) from None
    except (RuntimeError, EOFError) as err:
        raise ConfigError(f"checkpoint {path} is not a readable torch file: {err}") from None
    if not isinstance(checkpoint, dict) or "run_config" not in checkpoint:
        raise ConfigError(
            f"checkpoint {path} was not written by objectives' train.py (no run_config inside)"
        )
    return checkpoint


def evaluate(cfg: DictConfig) -> dict[str, float]:
    from objectives.assemble import assemble, build_trainer, instantiate_loggers
    from objectives.blas_threads import keep_cores_for_torch

    checkpoint = load_checkpoint(cfg.ckpt_path)
    run_cfg = OmegaConf.create(checkpoint["run_config"])
    if cfg.get("data"):
        run_cfg.data = OmegaConf.merge(run_cfg.data, cfg.data)
    parts = assemble(run_cfg)
    parts.module.load_state_dict(checkpoint["state_dict"])
    trainer = build_trainer(cfg.trainer, loggers=instantiate_loggers(cfg))
    keep_cores_for_torch()
    results = trainer.test(parts.module, datamodule=parts.datamodule)
    return {k: float(v) for k, v in (results[0] if results else {}).items()}


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    metrics = run_job(evaluate, cfg)
    for name, value in sorted(metrics.items()):
        log.info("%-22s %.6g", name, value)


KEYS = {
    "ckpt_path": "the checkpoint to evaluate (required); its saved config rebuilds the model",
    "data.*": "overrides of the checkpoint's data config, e.g. data.batch_size=256",
    "paths.log_dir": "where run folders go (default logs)",
}


def main() -> None:
    if wants_help(sys.argv):
        print(usage("eval", ["trainer", "logger"], KEYS))
        return
    start(hydra_main)


if __name__ == "__main__":
    main()
