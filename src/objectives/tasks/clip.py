"""CLIP: an image encoder and a text encoder trained so that each image's embedding is nearest
its own caption's (Radford et al. 2021), by one symmetric InfoNCE term (losses/clip.py).

The network is a pair of towers (models/clip_towers.py); the data gives each image its
caption as character tokens (data/caption_data.py). The task produces `image_features`,
`text_features` (N, embed_dim) and `labels`; the loss owns the learnable logit scale, which
goes to the loggers as `train/logit_scale` and `train/temperature` (τ = exp(−s)) at the
steps the terms go. The embeddings are judged on whole splits, not by the loss, at each
validation epoch (`val/...`, and at step 0 for the untrained towers) and at test:

- `i2t_top1`: the share of images whose nearest caption (among the split's) names their
  digit; `t2i_top1`: the share of captions whose nearest image shows theirs;
- `zero_shot_acc`: each image classified by the nearest of one prompt a class
  ("a handwritten 7"; `data.source.prompt`), the way CLIP classifies without a classifier.

Multi-device: in training, the features (and labels) are gathered from every process with
their gradients (tasks/global_batch.py), so each process scores its images against the
global batch's captions; the logit scale, used whole by every process, gets the full
gradient on each and DDP's average leaves it so (tests/test_clip.py).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import Tensor, nn

from objectives.errors import ConfigError
from objectives.losses.clip import ClipLoss
from objectives.metrics.retrieval import nearest_class_accuracy, retrieval_top1
from objectives.objective import Objective
from objectives.tasks.base import ObjectiveModule
from objectives.tasks.global_batch import GlobalBatch
from objectives.tracking.step_values import DeferredStepValues

log = logging.getLogger(__name__)

SCALE_TAGS = ("train/logit_scale", "train/temperature")


class ClipModule(GlobalBatch, ObjectiveModule):
    """Outputs `image_features`, `text_features` (N, D) and `labels` (N,); judged by top-1
    retrieval both ways and zero-shot classification on whole splits."""

    task_name = "clip"
    model_kind = "clip"
    produces = ("image_features", "text_features", "labels")
    primary_metric = "zero_shot_acc"

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        num_classes: int | None = None,
        context_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        if context_length is None:
            raise ConfigError(
                "task clip needs images paired with captions; choose captioned data, "
                "e.g. data=digits_captions"
            )
        if not callable(getattr(model, "encode_text", None)):
            raise ConfigError(
                f"task clip needs an image and a text encoder, but model {type(model).__name__} "
                "reads images only; choose model=clip_towers"
            )
        self.embed_dim = int(getattr(model, "embed_dim", 8))
        super().__init__(model, objective, **kwargs)
        self.num_classes = num_classes
        self._scale_values = DeferredStepValues(SCALE_TAGS)

    @property
    def _clip(self) -> ClipLoss | None:
        """The loss that owns the logit scale (None with another loss: nothing to log); found
        each time, not kept: an attribute would register it twice in the state dict."""
        losses = (getattr(term, "fn", None) for term in self.objective.terms)
        return next((fn for fn in losses if isinstance(fn, ClipLoss)), None)

    # -- the step ----------------------------------------------------------------------------
    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        images, labels, tokens, lengths = batch
        image, text = self.model(images), self.model.encode_text(tokens, lengths)
        image, text, labels = self.across_processes(image, text, labels)
        return {"image_features": image, "text_features": text, "labels": labels}

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        trainer = self.trainer
        loss = super().training_step(batch, batch_idx)  # GlobalBatch's: gathered on many
        step, clip = self.global_step, self._clip
        due = step % trainer.log_every_n_steps == 0
        if clip is not None and due and self.loggers and trainer.is_global_zero:
            scale = clip.logit_scale.detach()  # the scale this step's loss used
            self._scale_values.push(step, torch.stack([scale, (-scale).exp()]), self.loggers)
        return loss

    def example_outputs(self) -> dict[str, Tensor]:
        z = torch.randn(4, self.embed_dim, generator=torch.Generator().manual_seed(0))
        return {"image_features": z, "text_features": z.flip(0), "labels": torch.arange(4)}

    # -- using a trained model ---------------------------------------------------------------
    def inference_network(self) -> nn.Module:
        """The image tower: an image's embedding, comparable with any caption's."""
        return self.model.image

    def predictions(self, batch: tuple[Tensor, ...], **settings: Any) -> dict[str, Tensor]:
        return {"embedding": self.model(batch[0])}

    # -- judging the embeddings --------------------------------------------------------------
    @torch.no_grad()
    def _embed(self, split: str, chunk: int = 1024) -> tuple[Tensor, ...]:
        """A whole split's image and caption embeddings, its labels and the class prompts'
        embeddings, in eval mode."""
        datamodule = self.trainer.datamodule
        images, labels, tokens, lengths = datamodule.split(split)
        was_training = self.model.training
        self.model.eval()
        try:
            image = torch.cat([self.model(part) for part in images.split(chunk)])
            pieces = zip(tokens.split(chunk), lengths.split(chunk), strict=True)
            text = torch.cat([self.model.encode_text(t, n) for t, n in pieces])
            prompts = self.model.encode_text(*datamodule.class_prompts())
        finally:
            self.model.train(was_training)
        return image, text, labels, prompts

    @torch.no_grad()
    def judge(self, split: str) -> dict[str, Tensor]:
        """Top-1 retrieval both ways and zero-shot accuracy on a whole split."""
        image, text, labels, prompts = self._embed(split)
        return {
            "i2t_top1": retrieval_top1(image, text, labels, labels),
            "t2i_top1": retrieval_top1(text, image, labels, labels),
            "zero_shot_acc": nearest_class_accuracy(image, prompts, labels),
        }

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if not callable(getattr(self.trainer.datamodule, "class_prompts", None)):
            raise ConfigError("task clip needs captioned data, e.g. data=digits_captions")
        if self.trainer.ckpt_path:  # a resumed run: its towers are not untrained any more
            return
        before = {f"val/{k}": float(v) for k, v in self.judge("val").items()}
        for logger in self.loggers if self.trainer.is_global_zero else []:
            logger.log_metrics(before, step=0)
        log.info("before training: zero-shot accuracy %.4f", before["val/zero_shot_acc"])

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if not self.trainer.sanity_checking:  # the same value on every process: no sync
            self.log_dict({f"val/{k}": v for k, v in self.judge("val").items()}, sync_dist=False)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.log_dict({f"test/{k}": v for k, v in self.judge("test").items()}, sync_dist=False)
        if self._clip is not None:
            scale = float(self._clip.logit_scale)
            self.log_dict({"test/logit_scale": scale, "test/temperature": math.exp(-scale)},
                          sync_dist=False)  # fmt: skip

    # -- the logit scale's per-step values reach the disk with everything else ---------------
    def on_train_end(self) -> None:
        self._scale_values.flush(self.loggers)
        super().on_train_end()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._scale_values.flush(self.loggers)
        super().on_save_checkpoint(checkpoint)
