"""A trained module back from its checkpoint, for the commands that use it (predict, export).

The checkpoint carries the resolved config that built the module, the data's sizes it was
built to and the recipe of its inputs (data/input_spec.py), so the network is rebuilt
without the training data: a model is used where its data is not. A checkpoint written
before checkpoints kept sizes and recipe is rebuilt from its data, which must then be there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from objectives.run.checkpoints import load_checkpoint
from objectives.tasks import ObjectiveModule


@dataclass
class Restored:
    checkpoint: dict[str, Any]
    config: DictConfig  # the run config saved in the checkpoint
    module: ObjectiveModule  # its trained weights loaded, in evaluation mode
    inputs: dict[str, Any]  # how new inputs become what the network saw


def restore(ckpt_path: str) -> Restored:
    """The module a checkpoint saved, weights and all; one `ConfigError` line if it cannot
    be rebuilt (no saved config, weights that do not fit the config that says it built them).
    """
    # deferred: torch and Lightning load here, so a command's `--help` starts in a blink
    from objectives.data.input_spec import describe_inputs
    from objectives.run.assemble import assemble, assemble_without_data
    from objectives.run.resume import check_fits

    checkpoint = load_checkpoint(ckpt_path)
    config = OmegaConf.create(checkpoint["run_config"])
    config.model.compile = False  # eager: torch.jit.trace and torch.onnx refuse compiled nets
    if "dims" in checkpoint and "inputs" in checkpoint:
        module = assemble_without_data(config, dict(checkpoint["dims"]))
        inputs = dict(checkpoint["inputs"])
    else:  # an older checkpoint: sizes and recipe come from its training data
        parts = assemble(config)
        datamodule = parts.datamodule
        datamodule.load_state_dict(checkpoint.get(type(datamodule).__qualname__, {}))
        module, inputs = parts.module, describe_inputs(datamodule)
    fix = "the checkpoint was changed after training; use another one of the run"
    check_fits(ckpt_path, checkpoint, module.run_config or {}, module, fix=fix)
    module.load_state_dict(checkpoint["state_dict"])
    module.eval()
    return Restored(checkpoint, config, module, inputs)
