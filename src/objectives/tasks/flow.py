"""Normalizing flow: an invertible network z = f(x) with a tractable log-determinant, and
the change of variables −log p(x) = −log p_Z(f(x)) − log|det ∂f/∂x| with p_Z = N(0, I):

    loss=[prior_nll,log_det]     J = −log p_Z(f(x)) − log|det ∂f/∂x|   (nats a row)

The two terms are logged apart (train/raw/prior_nll, train/raw/log_det) and their sum is
the objective. Judged at every stage by `nll` (−log p(x) a row whatever the terms'
weights), on images also `bpd`, and, where the data's density is known (`task.reference`,
a function x ↦ log p(x)), `true_nll`: that density's NLL of the very same rows.

Images (`task.dequantize` = the pixel levels) are dequantised and logit-transformed
first (tasks/flow_inputs.py); that map's log-det joins `log_det`, so `nll` is the NLL of
the dequantised pixels on [0, 1]^D. Samples are exact: z ~ N(0, I), x = f⁻¹(z).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from objectives.errors import ConfigError
from objectives.losses.flow import standard_normal_nll
from objectives.metrics.flow import BitsPerDimension, NegativeLogLikelihood, ReferenceNLL
from objectives.objective import Objective
from objectives.tasks.base import ObjectiveModule
from objectives.tasks.flow_inputs import Dequantization

FLOW_MODELS = "model=realnvp|spline_flow"


class FlowModule(ObjectiveModule):
    """Outputs `z` = f(x) (N, D) and `log_det` = log|det ∂f/∂x| (N,)."""

    task_name = "flow"
    model_kind = "flow"
    produces = ("z", "log_det")
    primary_metric = "nll"
    reads_targets = False  # labels (digits, the ring's modes) are not modelled

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        reference: Callable[[Tensor], Tensor] | None = None,
        dequantize: int | None = None,
        logit_alpha: float = 0.05,
        in_channels: int | None = None,
        height: int | None = None,
        width: int | None = None,
        **kwargs: Any,
    ) -> None:
        if not (callable(getattr(model, "inverse", None)) and hasattr(model, "in_features")):
            raise ConfigError(
                f"task flow needs an invertible network with a log-determinant, got "
                f"{type(model).__name__}; use {FLOW_MODELS}"
            )
        if isinstance(objective, Objective):
            read = {key for term in objective.terms for key in term.reads}
            missing = [key for key in self.produces if key not in read]
            if missing:
                raise ConfigError(
                    f"task flow minimises −log p(x) = −log p_Z(f(x)) − log|det ∂f/∂x|, but no "
                    f"term reads {' or '.join(missing)} (without it J has no minimum worth "
                    f"having); use loss=[prior_nll,log_det]"
                )
        if reference is not None and not callable(reference):
            raise ConfigError(
                "task.reference must build a function x ↦ log p(x) (a `_target_` node with "
                f"`_partial_: true`), got {reference!r}"
            )
        sizes = (in_channels, height, width)
        if all(s is not None for s in sizes) and dequantize is None:
            raise ConfigError(
                "task flow on images needs task.dequantize (the pixels' levels, digits: 17): a "
                "density on discrete pixels grows without bound instead of learning them"
            )
        self.features = int(model.in_features)
        self.reference = reference
        self.inputs = None if dequantize is None else Dequantization(dequantize, logit_alpha)
        self.image_shape = sizes if all(s is not None for s in sizes) else None
        super().__init__(model, objective, **kwargs)

    # -- the data ----------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "split"):
            self.check_data(datamodule)

    def check_data(self, datamodule: Any) -> None:
        """Before training: a reference density is of the data as drawn (not standardised);
        dequantised pixels must lie on their grid."""
        name = getattr(datamodule, "name", "the data")
        if self.reference is not None and getattr(datamodule, "standardize_inputs", False):
            raise ConfigError(
                f"task.reference is the density of data '{name}' as drawn, but "
                "data.standardize_inputs=true rescales it; set data.standardize_inputs=false"
            )
        if self.inputs is None:
            return
        for split in ("train", "val", "test"):
            self.inputs.check(datamodule.split(split)[0], f"the {split} inputs of data '{name}'")

    def prepare(self, x: Tensor, noise: float | None = None) -> tuple[Tensor, Tensor]:
        """Flat rows the flow reads, and the log-det of getting there (0 without images)."""
        flat = x.flatten(1)
        if self.inputs is None:
            return flat, flat.new_zeros(len(flat))
        return self.inputs(flat, noise)

    # -- the step ----------------------------------------------------------------------------
    def transform(self, x: Tensor, noise: float | None = None) -> tuple[Tensor, Tensor]:
        """z = f(x) and log|det ∂z/∂x| of each row, the input map's (images) included."""
        y, log_det_in = self.prepare(x, noise)
        z, log_det = self.model(y)
        return z, log_det + log_det_in

    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        x = batch[0]
        z, log_det = self.transform(x)
        return {"z": z, "log_det": log_det, "x": x}

    def encode(self, x: Tensor, noise: float | None = None) -> tuple[Tensor, Tensor]:
        """z = f(x) and log p(x) of each row, (N,)."""
        z, log_det = self.transform(x, noise)
        return z, -standard_normal_nll(z) + log_det

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n exact samples, x = f⁻¹(z) with z ~ N(0, I) (images in [0, 1], shaped as the data)."""
        device = next(self.model.parameters()).device
        z = torch.randn(n, self.features, generator=generator).to(device)
        y = self.model.inverse(z)
        x = y if self.inputs is None else self.inputs.inverse(y)
        return x if self.image_shape is None else x.reshape(n, *self.image_shape)

    def predictions(self, batch: tuple[Tensor, ...], **settings: Any) -> dict[str, Tensor]:
        """log p(x) of each row (low: unlike the training data, an outlier score; pixels at
        their cells' centres) and z = f(x)."""
        z, log_prob = self.encode(batch[0], noise=None if self.inputs is None else 0.5)
        return {"log_prob": log_prob, "z": z}

    def example_outputs(self) -> dict[str, Tensor]:
        z = torch.randn(2, self.features, generator=torch.Generator().manual_seed(0))
        return {"z": z, "log_det": torch.zeros(2)}

    # -- judging -----------------------------------------------------------------------------
    def configure_metrics(self, stage: str) -> MetricCollection:
        metrics: dict[str, Any] = {"nll": NegativeLogLikelihood()}
        if self.inputs is not None:
            metrics["bpd"] = BitsPerDimension(self.features, self.inputs.levels)
        if self.reference is not None and stage != "train":
            metrics["true_nll"] = ReferenceNLL()
        return MetricCollection(metrics, compute_groups=False)

    def metric_inputs(self, outputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        nll = (standard_normal_nll(outputs["z"]) - outputs["log_det"]).detach()
        inputs = {"nll": nll}
        if self.reference is not None and not self.training:
            inputs["true_nll"] = -self.reference(outputs["x"].flatten(1))
        return inputs
