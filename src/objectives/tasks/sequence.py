"""Sequences: a network maps inputs to per-step class `logits`, judged against padded
`targets` by CTC (alignment-free) or per-token cross-entropy (one prediction a position)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from objectives import checks
from objectives.errors import ConfigError
from objectives.losses.sequence import CTC, PAD, ctc_needed_steps, real_tokens
from objectives.metrics.sequence import (
    CharacterErrorRate,
    ExactMatch,
    NatsAboveEntropy,
    TokenPerplexity,
    UnalignableCount,
    argmax_decode,
    ctc_greedy_decode,
)
from objectives.objective import Objective
from objectives.tasks.base import ObjectiveModule
from objectives.tasks.token_normalisation import MODES, StepTokens

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


class SequenceModule(ObjectiveModule):
    """Outputs `logits` (N, T, C), `input_lengths` (the real steps of each), `targets` (N, L)
    padded with `PAD`, `target_lengths`, and `tokens`, the denominator of every token-mean
    loss (tasks/token_normalisation.py). Judged by the character error rate `cer` and
    `exact_match` of the greedy decoding (CTC's best path when a term reads
    `input_lengths`, else the argmax at every position), and for per-position losses by
    `perplexity`, and `nats_above_entropy` where the data knows its entropy rate.
    """

    task_name = "sequence"
    produces = ("logits", "targets", "input_lengths", "target_lengths", "tokens")
    primary_metric = "cer"

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        num_tokens: int,
        entropy_rate: float | None = None,
        normalisation: str = "step",
        **kwargs: Any,
    ) -> None:
        self.num_tokens = checks.positive_int(num_tokens, "task.num_tokens", example=11)
        self.entropy_rate = entropy_rate
        self.step_tokens = StepTokens(checks.one_of(normalisation, "task.normalisation", MODES))
        self.ctc_terms = [t for t in objective.terms if isinstance(getattr(t, "fn", None), CTC)]
        for term in self.ctc_terms:
            if term.fn.blank >= self.num_tokens:  # torch would index past the classes
                raise ConfigError(
                    f"loss.{term.name}.fn.blank={term.fn.blank} is not one of the model's "
                    f"{self.num_tokens} classes (0..{self.num_tokens - 1}); use "
                    f"loss.{term.name}.fn.blank=0, the class the data keeps for it"
                )
        self.aligned = "input_lengths" in objective.reads  # CTC: decode its best path
        super().__init__(model, objective, **kwargs)

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.model(inputs, lengths)

    def step_outputs(self, batch: Any) -> dict[str, Tensor]:
        inputs, input_lengths, targets, *window = batch  # training: the window's token count
        logits, lengths = self.model(inputs, input_lengths)
        return {
            "logits": logits,
            "input_lengths": lengths,
            "targets": targets,
            "target_lengths": real_tokens(targets),
            "tokens": self.step_tokens(self, targets, window[0] if window else None),
        }

    def epoch_weight(self, batch: Any, outputs: Mapping[str, Tensor]) -> Tensor:
        """`tokens`: the token-mean terms' denominator, so that the epoch means are means over
        the epoch's real tokens (Σ token sums / Σ tokens), not over its rows."""
        return outputs["tokens"]

    def example_outputs(self) -> dict[str, Tensor]:
        targets = torch.tensor([[1, 1, PAD], [1, PAD, PAD]])
        return {
            "logits": torch.zeros(2, 3, self.num_tokens),
            "input_lengths": torch.tensor([3, 2]),
            "targets": targets,
            "target_lengths": real_tokens(targets),
            "tokens": torch.tensor(3.0),
        }

    def configure_metrics(self, stage: str) -> MetricCollection:
        metrics: dict[str, Any] = {"cer": CharacterErrorRate(), "exact_match": ExactMatch()}
        if self.aligned:
            metrics["unalignable"] = UnalignableCount()
        else:
            metrics["perplexity"] = TokenPerplexity()
            if self.entropy_rate is not None:
                metrics["nats_above_entropy"] = NatsAboveEntropy(self.entropy_rate)
        return MetricCollection(metrics, compute_groups=False)

    def metric_inputs(self, outputs: Mapping[str, Tensor]) -> tuple[dict[str, Tensor]]:
        logits = outputs["logits"].detach()
        if self.aligned:
            blank = self.ctc_terms[0].fn.blank if self.ctc_terms else 0
            decoded = ctc_greedy_decode(logits, outputs["input_lengths"], blank)
        else:
            decoded = argmax_decode(logits, outputs["targets"])
        return ({**outputs, "logits": logits, "decoded": decoded},)

    def predictions(
        self,
        batch: tuple[Tensor, ...],
        length: int = 20,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        **settings: Any,
    ) -> dict[str, Tensor]:
        """`tokens` (N, T) padded with `PAD`: for image strips the labels read (CTC's best
        path, or the most likely class a step), for token prompts a continuation of `length`
        tokens sampled at `temperature` (0: the most likely each step)."""
        inputs, lengths = batch[0], batch[1]
        if inputs.ndim == 2:
            return {"tokens": self.continuation(inputs, lengths, length, temperature, generator)}
        logits, steps = self.model(inputs, lengths)
        if self.aligned:
            blank = self.ctc_terms[0].fn.blank if self.ctc_terms else 0
            return {"tokens": ctc_greedy_decode(logits, steps, blank)}
        real = torch.arange(logits.shape[1], device=logits.device) < steps[:, None]
        return {"tokens": torch.where(real, logits.argmax(-1), PAD)}

    def continuation(
        self,
        prompts: Tensor,
        lengths: Tensor,
        length: int,
        temperature: float,
        generator: torch.Generator | None,
    ) -> Tensor:
        """`length` tokens after each prompt (N, L) of `lengths` real tokens, one at a time
        from the model's next-token distribution; never the padding id 0."""
        rows = torch.arange(len(prompts), device=prompts.device)
        tokens = torch.zeros(len(prompts), prompts.shape[1] + length, dtype=prompts.dtype,
                             device=prompts.device)  # fmt: skip
        tokens[:, : prompts.shape[1]] = prompts
        ends = lengths.clone().to(prompts.device)
        for _ in range(length):
            logits, _ = self.model(tokens[:, : int(ends.max())], ends)
            last = logits[rows, ends - 1].float()
            last[:, 0] = -torch.inf
            if temperature == 0:
                chosen = last.argmax(-1)
            else:
                probs = (last / temperature).softmax(-1)
                chosen = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            tokens[rows, ends] = chosen
            ends += 1
        steps = lengths.to(prompts.device)[:, None] + torch.arange(length, device=prompts.device)
        return tokens.gather(1, steps)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "split"):
            self.check_data(datamodule)

    def check_data(self, datamodule: Any) -> None:
        """Before training: per-position losses need one output a target position; CTC
        needs a blank that is no label, and refuses strings no alignment reaches, or, with
        `zero_infinity`, counts them (and refuses a split of which none can be aligned: its
        objective would be 0 whatever the model)."""
        name = getattr(datamodule, "name", "the data")
        self.check_blank(datamodule, name)
        for split in SPLITS:
            inputs, input_lengths, targets = datamodule.split(split)[:3]
            steps = self.model.output_lengths(torch.tensor([inputs.shape[-1]]))
            if not self.aligned and int(steps[0]) != targets.shape[1]:
                raise ConfigError(
                    f"task sequence: the per-position loss needs one output a target "
                    f"position, but model {type(self.model).__name__} gives {int(steps[0])} "
                    f"steps for the {targets.shape[1]} target positions of data '{name}'; "
                    f"choose a model that does ({self.stride_hint('model.time_stride=8')} for "
                    "digit strings) or loss=ctc"
                )
            if not self.ctc_terms:
                continue
            needed = ctc_needed_steps(targets, real_tokens(targets))
            bad = int((self.model.output_lengths(input_lengths) < needed).sum())
            if not bad:
                continue
            term = self.ctc_terms[0]
            message = (
                f"{bad} of the {len(targets)} {split} sequences of data '{name}' cannot be "
                f"aligned by CTC: the model gives fewer time steps than their labels plus a "
                f"blank between repeats"
            )
            fewer = self.stride_hint("a smaller model.time_stride")
            more_steps = f"use a model with more time steps ({fewer})"
            if bad == len(targets):  # zero_infinity would zero every one: J = 0, nothing learnt
                zeroed = (
                    f"; with loss.{term.name}.fn.zero_infinity=true every one is left out, so "
                    f"the {split} objective is 0 whatever the model"
                    if term.fn.zero_infinity
                    else ""
                )
                raise ConfigError(
                    f"{message}{zeroed}; {more_steps}, or, for targets as long as the inputs, "
                    "a per-position loss: loss=token_ce"
                )
            if not term.fn.zero_infinity:
                raise ConfigError(
                    f"{message}; {more_steps} or loss.{term.name}.fn.zero_infinity=true to leave "
                    f"them out (counted as {split}/unalignable)"
                )
            if self.trainer.is_global_zero:
                log.warning("%s; left out (zero_infinity), counted as */unalignable", message)

    def stride_hint(self, setting: str) -> str:
        """`setting` for a model that has a time stride (the CRNN); otherwise the model that
        has one, so a fix never names a key the chosen model lacks (gru_lm has none)."""
        if hasattr(self.model, "time_stride"):
            return setting
        return f"model=crnn with {setting}"

    def check_blank(self, datamodule: Any, name: str) -> None:
        """CTC's blank must lie outside the data's labels: a label equal to it is read as
        "no label", so the model could never output it (nor learn to)."""
        if not self.ctc_terms:
            return
        targets = [t for t in (datamodule.split(s)[2] for s in SPLITS) if t.numel()]
        if not targets:
            return
        top, bottom = torch.iinfo(targets[0].dtype).max, torch.iinfo(targets[0].dtype).min
        # each split's least and greatest label, padding put out of the way (no boolean
        # indexing, which would read the device once a split): one read, below
        lows = torch.stack([torch.where(t == PAD, top, t).min() for t in targets])
        highs = torch.stack([torch.where(t == PAD, bottom, t).max() for t in targets])
        low, high = (int(v) for v in torch.stack([lows.min(), highs.max()]).tolist())
        if low > high:  # nothing but padding: no labels
            return
        for term in self.ctc_terms:
            if low <= term.fn.blank <= high:
                free = [c for c in range(self.num_tokens) if not low <= c <= high]
                fix = "data whose labels leave a class free for the blank"
                if free:
                    fix = f"loss.{term.name}.fn.blank={free[0]}, a class no label uses"
                raise ConfigError(
                    f"loss.{term.name}.fn.blank={term.fn.blank} is also a label of data "
                    f"'{name}' (its labels are {low}..{high}): CTC reads the blank as no label, "
                    f"so the model could never output {term.fn.blank}; use {fix}"
                )
