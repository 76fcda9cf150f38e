"""`python predict.py ckpt_path=... input=...`: a trained model on new inputs, into a CSV.

The network is rebuilt from the checkpoint's own config (run/restore.py), without the
training data; new inputs are read by the recipe the checkpoint saved (data/new_inputs.py):
the training columns, image mode and size, and scaling. Lightning's predict loop runs them
a batch at a time on the configured accelerator, and each batch's rows go to disk as they
come (run/predict_columns.py), so memory stays flat however large the input. The run
folder (logs/predict/runs/<time>) holds predictions.csv, complete, or nothing: a command
that fails leaves no folder.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from objectives import checks
from objectives.errors import ConfigError
from objectives.run.cli import run_job, start, usage, wants_help
from objectives.run.config import config_dir
from objectives.run.console import route_lightning_logs
from objectives.run.run_folder import kept_only_if_trained, note_training_started

log = logging.getLogger(__name__)


def new_inputs(module: Any, spec: dict[str, Any], cfg: DictConfig) -> tuple[Any, str]:
    """The batches to predict on, and the name of the column that identifies each row.
    What the user gave is checked here, before any prediction is written."""
    from objectives.data import new_inputs as read  # deferred: torch loads after --help

    batch_size = checks.positive_int(cfg.batch_size, "batch_size", example=256)
    workers = checks.integer(cfg.num_workers, "num_workers", low=0, example=2)
    kind = spec.get("kind")
    if module.task_name == "gan":
        if cfg.get("input") is not None:
            raise ConfigError("task gan draws samples from noise and reads no input; set n=16")
        n = checks.positive_int(cfg.n, "n", example=16)
        seed = checks.integer(cfg.seed, "seed", example=0)
        return read.noise_batches(n, module.model.noise_dim, batch_size, seed), "sample"
    if kind == "tokens":
        return _prompts(cfg, spec, batch_size)
    if cfg.get("input") is None:
        wanted = {
            "table": f"a CSV file with the columns {', '.join(spec.get('names', []))}",
            "image": "an image file or a folder of images",
            "strip": "an image strip or a folder of them",
        }.get(kind, "a file")
        raise ConfigError(f"input= is required: {wanted}; e.g. input=new.{_suffix(kind)}")
    path = str(cfg.input)
    if kind == "table":
        rows = read.CSVRows(path, spec, batch_size, str(cfg.delimiter))
        return read.loader(rows, batch_size, 0), "line"
    if kind in ("image", "strip"):
        files = read.ImageFiles(path, spec, strips=kind == "strip")
        collate = read.collate_strips if kind == "strip" else read.collate_images
        return read.loader(files, batch_size, workers, collate), "file"
    why = spec.get("why") or "predict.py reads CSV tables, images, image strips and text prompts"
    raise ConfigError(
        f"predict.py has no reader for the inputs of data '{spec.get('name')}' that checkpoint "
        f"{cfg.ckpt_path} was trained on: {why}"
    )


def _suffix(kind: str | None) -> str:
    return {"table": "csv", "image": "png", "strip": "png"}.get(kind or "", "csv")


def _prompts(cfg: DictConfig, spec: dict[str, Any], batch_size: int) -> tuple[Any, str]:
    from objectives.data.new_inputs import prompt_batches  # deferred, as above

    prompt, path = cfg.get("prompt"), cfg.get("input")
    if (prompt is None) == (path is None):
        raise ConfigError(
            "a language model continues prompts: give prompt='...' or input=<text file, one "
            "prompt a line>, one of the two"
        )
    if prompt is not None:
        prompts = [str(p) for p in (prompt if OmegaConf.is_list(prompt) else [prompt])]
    else:
        file = Path(str(path))
        if not file.is_file():
            raise ConfigError(f"input={path}: no such file; a text file, one prompt a line")
        prompts = [line for line in file.read_text(encoding="utf-8").splitlines() if line]
        if not prompts:
            raise ConfigError(f"input={path}: no prompts in the file; one prompt a line")
    return prompt_batches(prompts, spec, batch_size), "prompt"


def sampling_settings(cfg: DictConfig) -> dict[str, Any]:
    length = checks.positive_int(cfg.length, "length", example=20)
    temperature = checks.number(cfg.temperature, "temperature", low=0, example=1.0)
    return {"length": length, "temperature": temperature}


def predict(cfg: DictConfig) -> Path:
    # deferred: torch and Lightning load here, so `predict.py --help` starts in a blink
    import lightning as L
    import torch

    from objectives.run.assemble import build_trainer
    from objectives.run.blas_threads import keep_cores_for_torch
    from objectives.run.predict_columns import PredictionWriter
    from objectives.run.restore import restore
    from objectives.run.seeded_sampling import SeededSampling

    route_lightning_logs()
    started = time.perf_counter()
    restored = restore(cfg.ckpt_path)
    module, spec = restored.module, restored.inputs
    batches, id_name = new_inputs(module, spec, cfg)
    seed = checks.integer(cfg.seed, "seed", example=0)
    if module.task_name == "sequence":
        module.predict_settings = sampling_settings(cfg)
    folder = Path(HydraConfig.get().runtime.output_dir)
    writer = PredictionWriter(folder, spec, id_name)
    # one device: the rows come out in order, into one file
    trainer_cfg = OmegaConf.create(OmegaConf.to_container(cfg.trainer, resolve=True))
    trainer_cfg.update(devices=1, num_nodes=1, strategy="auto")
    trainer = build_trainer(trainer_cfg, callbacks=[writer, SeededSampling(seed)])
    keep_cores_for_torch()
    if cfg.get("torch_threads") is not None:
        torch.set_num_threads(checks.positive_int(cfg.torch_threads, "torch_threads", example=1))
    L.seed_everything(seed, verbose=False)
    try:
        # Lightning's predict loop runs in inference mode itself
        trainer.predict(module, dataloaders=batches, return_predictions=False)
        path = writer.finish()
    except BaseException:
        writer.discard()
        raise
    note_training_started()  # predictions.csv is whole: from here on the folder is kept
    seconds = time.perf_counter() - started
    log.info(
        "Predicted %d %s with the %s model of %s in %.1f s\npredictions: %s",
        writer.rows, "row" if writer.rows == 1 else "rows", module.task_name,
        cfg.ckpt_path, seconds, path,
    )  # fmt: skip
    return path


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="predict")
def hydra_main(cfg: DictConfig) -> None:
    run_job(predict, cfg)


KEYS = {
    "ckpt_path": "the checkpoint to use (required); its saved config rebuilds the model",
    "input": "a CSV file, an image or a folder of images, or a text file of prompts",
    "prompt": "a language model's prompt, e.g. prompt='abc' (length=, temperature=)",
    "n": "a GAN's number of samples (default 16)",
    "seed": "seeds a GAN's noise, a continuation's sampling, a VAE's ELBO draws",
    "batch_size": "inputs a batch (default 256); num_workers=2 decodes images alongside",
    "paths.log_dir": "where run folders go (default logs)",
}


def main() -> None:
    if wants_help(sys.argv):
        print(usage("predict", ["trainer"], KEYS))
        return
    with kept_only_if_trained(None):  # a refused or failed prediction leaves no folder
        start(hydra_main)


if __name__ == "__main__":
    main()
