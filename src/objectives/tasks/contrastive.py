"""Contrastive (SimCLR-style) representation learning: two augmented views of each image,
embedded so that views of the same image are close and other images far apart.

The network is an encoder f (any `model=` trunk, its output the representation) and a
projection head g; the objective reads the projections `z1 = g(f(aug(x)))`,
`z2 = g(f(aug'(x)))` and, where the data has them, the `labels` (SimCLR applies the loss
to g(f(x)) and keeps f(x) as the representation: the head absorbs what the loss throws
away). The representation is judged by real metrics on whole splits, not by the loss:

- `val/knn_acc` each validation epoch: cosine k-NN accuracy of validation representations
  against training representations (the untrained encoder's at step 0, so the gain shows);
- at test: `test/knn_acc` and `test/linear_probe_acc` (a logistic regression on frozen
  representations), next to the same figures for the untrained encoder
  (`test/untrained/...`) and for raw pixels (`test/pixels/...`);
- the test representations with labels and thumbnails in TensorBoard's projector.

Multi-device: in training, z1, z2 and labels are gathered from every process with their
gradients (tasks/global_batch.py), so every process contrasts its rows against the global
batch; the parameter gradient is exactly the single-process gradient on the global batch
(tests/test_ddp_equivalence.py, family "contrastive").
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from objectives.checks import positive_int
from objectives.errors import ConfigError
from objectives.metrics.embedding import knn_accuracy, linear_probe_accuracy
from objectives.objective import Objective
from objectives.objective.tags import tagged
from objectives.tasks.base import ObjectiveModule
from objectives.tasks.global_batch import GlobalBatch
from objectives.tracking.writers import tensorboard_writers

log = logging.getLogger(__name__)


class EncoderWithHead(nn.Module):
    """f (the representation, judged by k-NN and probes) followed by g (what the loss reads)."""

    def __init__(self, encoder: nn.Module, representation_dim: int, hidden: int, out: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(
            nn.Linear(representation_dim, hidden), nn.ReLU(), nn.Linear(hidden, out)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))


@torch.no_grad()
def represent(encoder: nn.Module | None, inputs: Tensor, chunk: int = 1024) -> Tensor:
    """Representations of a whole split in eval mode (None: the flattened pixels)."""
    if encoder is None:
        return inputs.flatten(1).float()
    was_training = encoder.training
    encoder.eval()
    try:
        return torch.cat([encoder(part) for part in inputs.split(chunk)])
    finally:
        encoder.train(was_training)


class ContrastiveModule(GlobalBatch, ObjectiveModule):
    """Outputs `z1`, `z2` (N, projection_dim) and `labels` (N,); judged by k-NN accuracy and a
    linear probe of the encoder's representation."""

    task_name = "contrastive"
    produces = ("z1", "z2", "labels")
    primary_metric = "knn_acc"

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        augment: nn.Module | None = None,
        representation_dim: int = 64,
        projection_hidden: int = 128,
        projection_dim: int = 32,
        knn_k: int = 20,
        probe_epochs: int = 100,
        num_classes: int | None = None,
        projector: bool = True,
        **kwargs: Any,
    ) -> None:
        if augment is None:
            raise ConfigError(
                "task contrastive needs augmentations to make two views of each image; "
                "pick them, e.g. augment=digits"
            )
        representation_dim = positive_int(representation_dim, "task.representation_dim")
        projection_hidden = positive_int(projection_hidden, "task.projection_hidden")
        projection_dim = positive_int(projection_dim, "task.projection_dim")
        knn_k = positive_int(knn_k, "task.knn_k")
        probe_epochs = positive_int(probe_epochs, "task.probe_epochs")
        self.projection_dim = projection_dim
        network = EncoderWithHead(model, representation_dim, projection_hidden, projection_dim)
        super().__init__(network, objective, **kwargs)
        self.augment = augment
        self.knn_k, self.probe_epochs = knn_k, probe_epochs
        self.num_classes = num_classes
        self.projector = projector
        # a frozen copy of the encoder as fit starts, for the untrained figures at test; a
        # plain dict, so it is neither a submodule nor in checkpoints
        self._reference: dict[str, nn.Module] = {}

    @classmethod
    def network_dims(cls, dims: Mapping[str, int], task_cfg: Mapping[str, Any]) -> dict[str, int]:
        """The encoder ends in the representation, not in one output a class."""
        size = int(task_cfg.get("representation_dim", 64))
        return {**dims, "out_features": size, "num_classes": size}

    # -- the step ----------------------------------------------------------------------------
    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        inputs, labels = batch[0], batch[1]
        views = torch.cat([self.augment(inputs), self.augment(inputs)])
        z1, z2 = self.model(views).chunk(2)  # one forward: normalisation layers see both views
        z1, z2, labels = self.across_processes(z1, z2, labels)
        return {"z1": z1, "z2": z2, "labels": labels}

    def inference_network(self) -> nn.Module:
        """The encoder f: its representation is what the contrastive objective trained for
        use (the projection head g serves only the loss)."""
        return self.model.encoder

    def predictions(self, batch: tuple[Tensor, ...], **settings: Any) -> dict[str, Tensor]:
        return {"representation": self.model.encoder(batch[0])}

    def example_outputs(self) -> dict[str, Tensor]:
        z = torch.randn(4, self.projection_dim, generator=torch.Generator().manual_seed(0))
        return {"z1": z, "z2": z.flip(0), "labels": torch.tensor([0, 1, 0, 1])}

    # -- judging the representation ----------------------------------------------------------
    def _splits(self) -> dict[str, tuple[Tensor, Tensor]]:
        datamodule = self.trainer.datamodule
        if not hasattr(datamodule, "split"):
            raise ConfigError("task contrastive needs an in-memory data set (data=digits, ...)")
        return {name: datamodule.split(name) for name in ("train", "val", "test")}

    def _judge(self, encoder: nn.Module | None, query: str, probe: bool = False) -> dict:
        """k-NN accuracy of the `query` split against the training split (and, with `probe`,
        a linear probe's accuracy on it), each split represented once."""
        splits = self._splits()
        (x_train, y_train), (x_query, y_query) = splits["train"], splits[query]
        z_train, z_query = represent(encoder, x_train), represent(encoder, x_query)
        figures = {"knn_acc": knn_accuracy(z_train, y_train, z_query, y_query,
                                           k=min(self.knn_k, len(x_train)))}  # fmt: skip
        if probe:
            figures["linear_probe_acc"] = linear_probe_accuracy(
                z_train, y_train, z_query, y_query,
                num_classes=self.num_classes, epochs=self.probe_epochs,
            )  # fmt: skip
        return figures

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.trainer.ckpt_path:  # a resumed run: its encoder is not untrained any more
            return
        encoder = self.model.encoder
        self._reference["untrained"] = copy.deepcopy(encoder).requires_grad_(False)
        before = {"val/knn_acc": float(self._judge(encoder, "val")["knn_acc"]),
                  "val/knn_acc_pixels": float(self._judge(None, "val")["knn_acc"])}  # fmt: skip
        for logger in self.loggers if self.trainer.is_global_zero else []:
            logger.log_metrics(before, step=0)
        log.info("k-NN accuracy before training: encoder %.4f, pixels %.4f",
                 before["val/knn_acc"], before["val/knn_acc_pixels"])  # fmt: skip

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if not self.trainer.sanity_checking:  # the same value on every process: no sync
            knn = self._judge(self.model.encoder, "val")["knn_acc"]
            self.log("val/knn_acc", knn, sync_dist=False)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        encoders = {"": self.model.encoder}
        if "untrained" in self._reference:  # a run that trained here: baselines beside it
            encoders.update(untrained=self._reference["untrained"], pixels=None)
        figures = {
            tagged("test", prefix, name): value
            for prefix, encoder in encoders.items()
            for name, value in self._judge(encoder, "test", probe=True).items()
        }
        self.log_dict(figures, sync_dist=False)
        if self.projector:
            self._add_projector()

    def _add_projector(self) -> None:
        """The test representations, labelled, with each image as its thumbnail."""
        if not self.trainer.is_global_zero:
            return
        inputs, labels = self._splits()["test"]
        if inputs.ndim != 4:
            return
        low = inputs.amin(dim=(1, 2, 3), keepdim=True)
        high = inputs.amax(dim=(1, 2, 3), keepdim=True)
        thumbnails = ((inputs - low) / (high - low).clamp_min(1e-8)).cpu()
        vectors = represent(self.model.encoder, inputs).cpu()
        for writer in tensorboard_writers(self.loggers):
            writer.add_embedding(
                vectors, metadata=labels.cpu().tolist(), label_img=thumbnails,
                global_step=self.global_step, tag="test/representation",
            )  # fmt: skip
