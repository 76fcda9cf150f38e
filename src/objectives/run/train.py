"""`python train.py [overrides]`: train a task by its objective, then test it.

`train(cfg)` is the whole job and is what the tests call; `main` is the Hydra entry
point behind `train.py` and the `objectives-train` console script. Torch and Lightning
are imported inside `train`, so `train.py --help` and `--cfg job` start in a fraction of
a second.
"""

from __future__ import annotations

import logging
import sys
import time
from functools import partial
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

from objectives.errors import ConfigError
from objectives.refusals import failures_in, refused
from objectives.run.cli import run_job, start, usage, wants_help
from objectives.run.config import config_dir
from objectives.run.console import route_lightning_logs
from objectives.run.overrides import flags_first
from objectives.run.resume import resumed_by, with_saved_overrides
from objectives.run.run_folder import kept_only_if_trained
from objectives.run.signals import stops_on_signals
from objectives.run.sweeps import record_job
from objectives.run.sweeps.job_record import every_job_failed, in_multirun

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)


def describe_parameters(network: nn.Module, limit: int = 16) -> str | None:
    """`weight=2.003, bias=0.987` for networks small enough to read; None otherwise."""
    params = list(network.named_parameters())
    if sum(p.numel() for _, p in params) > limit:
        return None
    parts = []
    for name, p in params:
        values = [f"{v:.4g}" for v in p.detach().flatten().tolist()]
        parts.append(f"{name}={values[0] if len(values) == 1 else '[' + ', '.join(values) + ']'}")
    return ", ".join(parts)


@stops_on_signals  # SIGTERM/SIGINT: last.ckpt at a safe point, then Preempted
def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, optionally test, log hyper-parameters; returns the final metrics as floats."""
    # deferred: torch and Lightning load here, so `train.py --help` starts in a blink
    import lightning as L
    import torch
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from objectives.run.assemble import (
        assemble,
        build_trainer,
        instantiate_all,
        instantiate_loggers,
    )
    from objectives.run.blas_threads import keep_cores_for_torch
    from objectives.run.checkpoints import load_checkpoint
    from objectives.run.distributed import use_job_command_for_children
    from objectives.run.hparams import hparams_of, log_hparams
    from objectives.run.preemption import stop_at_signals
    from objectives.run.resume import check_fits, checkpoint_file, purge_after
    from objectives.run.steps import check_batches, check_steps_made, check_test_split
    from objectives.run.training_started import TrainingStarted
    from objectives.tracking import publish

    route_lightning_logs()
    if cfg.get("seed") is not None:
        with refused("seed"):
            L.seed_everything(cfg.seed, workers=True, verbose=False)
    parts = assemble(cfg)
    check_test_split(parts.datamodule, bool(cfg.get("test")))
    ckpt_path = checkpoint_file(cfg.get("ckpt_path"), cfg.paths.output_dir)
    start_step = 0
    if ckpt_path is not None:  # checked before a logger or the Trainer writes anything
        checkpoint = load_checkpoint(ckpt_path)
        check_fits(ckpt_path, checkpoint, parts.module.run_config, parts.module)
        start_step = int(checkpoint["global_step"])
        del checkpoint
    loggers = instantiate_loggers(cfg)
    try:
        callbacks = [*instantiate_all(cfg.get("callbacks")), TrainingStarted()]
        trainer = build_trainer(cfg.trainer, callbacks, loggers)
        stop_at_signals(trainer, cfg.paths.output_dir)
        keep_cores_for_torch()
        if cfg.get("torch_threads") is not None:  # a recipe's choice (the sequence ones: 1)
            torch.set_num_threads(int(cfg.torch_threads))
        use_job_command_for_children(trainer)
        batch = check_batches(trainer, parts.datamodule)
        if ckpt_path is not None:
            purge_after(loggers, start_step)
        if batch and rank_zero_only.rank == 0:  # the Trainer knows its rank only once fitting
            log.info(batch)
        started = time.perf_counter()
        at = lambda: f"epoch {trainer.current_epoch}, step {trainer.global_step}"  # noqa: E731
        with failures_in("training", at):  # a library's failure part-way: one line, not a traceback
            trainer.fit(parts.module, datamodule=parts.datamodule, ckpt_path=ckpt_path,
                        weights_only=True)  # fmt: skip
        seconds = time.perf_counter() - started
        recorder = parts.module.recorder
        check_steps_made(trainer, start_step, recorder.steps_taken, recorder.guard.skipped_in_fit)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        fitted = describe_parameters(parts.module.model)
        if fitted is not None and trainer.is_global_zero:
            log.info("Fitted parameters (last epoch): %s", fitted)

        if cfg.get("test"):
            best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
            # the test figures are shown once, in the closing summary, not in Lightning's table too
            with failures_in("the test"):
                trainer.test(parts.module, datamodule=parts.datamodule, ckpt_path=best,
                             weights_only=True, verbose=False)  # fmt: skip
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})

        final = {k: v for k, v in metrics.items() if k.startswith(("val/", "test/"))}
        log_hparams(loggers, hparams_of(cfg), final, experiment=not in_multirun())
        if trainer.is_global_zero:
            log.info("\n".join(summary_of_run(cfg, trainer, parts.module, final, seconds)))
        return metrics
    finally:  # a W&B run ends with its job, failed or not: a sweep's next job starts its own
        publish.finish(loggers)


def summary_of_run(cfg, trainer, module, final: dict[str, float], seconds: float) -> list[str]:
    """The closing summary's lines (run/closing.py) from what the fit left."""
    # deferred: Lightning's loggers load with the run, not with `train.py --help`
    from lightning.pytorch.loggers import TensorBoardLogger

    from objectives.run.closing import closing_lines

    skipped = module.recorder.guard.skipped_in_fit
    trained = (
        f"Done: {trainer.current_epoch} epochs, {trainer.global_step} optimizer steps in "
        f"{seconds:.1f} s" + (f" ({skipped} skipped: non-finite objective)" if skipped else "")
    )
    checkpoint = trainer.checkpoint_callback
    best = None
    if checkpoint is not None and checkpoint.best_model_path:
        score = checkpoint.best_model_score
        best = (checkpoint.best_model_path, checkpoint.monitor or "score",
                float(score) if score is not None else float("nan"))  # fmt: skip
    boards = [lg.log_dir.rstrip("/") for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
    names = {player: objective.names for player, objective in module.objectives.items()}
    tested = "best checkpoint" if best is not None else "last weights"
    lines = closing_lines(final, names, cfg.paths.output_dir, best, next(iter(boards), None),
                          trained, tested)  # fmt: skip
    stopped = stopped_early(trainer)
    return [lines[0], stopped, *lines[1:]] if stopped else lines


def stopped_early(trainer) -> str | None:
    """`Stopped early: val/objective did not improve in the last 10 validations (best
    0.5586)`, when an EarlyStopping callback ended the fit; None otherwise."""
    # deferred: Lightning loads with the run, not with `train.py --help`
    from lightning.pytorch.callbacks.early_stopping import EarlyStopping, EarlyStoppingReason

    for callback in trainer.callbacks:
        if not isinstance(callback, EarlyStopping) or not callback.stopping_reason_message:
            continue
        if callback.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
            return (
                f"Stopped early: {callback.monitor} did not improve in the last "
                f"{callback.wait_count} validations (best {float(callback.best_score):.6g})"
            )
        return "Stopped early: " + callback.stopping_reason_message.split(" Signaling")[0]
    return None


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    """Returns `optimized_metric` (default `val/objective`), the value a Hydra sweeper
    minimises. Inside a multirun a failing job is recorded, not raised (see sweeps/)."""
    if in_multirun():
        return run_job(partial(record_job, train), cfg)
    return run_job(train, cfg).get(cfg.get("optimized_metric") or "val/objective")


GROUPS = [
    "loss", "regularizer", "model", "data", "task", "optimizer", "scheduler",
    "augment", "trainer", "logger", "callbacks", "experiment", "debug", "sweep", "hparams_search",
]  # fmt: skip
KEYS = {
    "seed": "seeds Python, NumPy and torch (default 42; null: not seeded)",
    "ckpt_path": "resume: `last` (the newest run) or a .ckpt file, in its own run folder",
    "test": "test the best checkpoint after training (default true)",
    "paths.log_dir": "where run folders go (default logs)",
}


def main() -> float | None:
    if wants_help(sys.argv):
        print(usage("train", GROUPS, KEYS))
        return None
    argv = [sys.argv[0], *flags_first(sys.argv[1:])]
    try:
        resumed = resumed_by(argv, config_dir())
        sys.argv = with_saved_overrides(argv, config_dir(), resumed)
    except ConfigError as err:
        sys.exit(f"error: {err}")
    if "-m" in sys.argv or "--multirun" in sys.argv:  # a sweep keeps each job's record
        result = start(hydra_main)
        from objectives.run.sweeps.summary import LAST_SWEEP  # deferred: after the sweep

        failed = every_job_failed(LAST_SWEEP.pop("dir")) if "dir" in LAST_SWEEP else None
        if failed:
            sys.exit(f"error: {failed}")
        return result
    with kept_only_if_trained(resumed):
        return start(hydra_main)


if __name__ == "__main__":
    main()
