"""A term of the objective: a named, weighted scalar that training minimises.

Losses read the step's named outputs (`pred`, `target`, `logits`, ...); parameter
penalties read the parameters of the network they are bound to. Both are `Term`s,
so the objective treats them alike and logs each by its name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError
from objectives.objective.closed_form import ClosedFormPenalty, closed_form_gradient
from objectives.objective.weights import Weight, as_weight
from objectives.refusals import refused

# Modules whose parameters are scale/shift of a normalisation, not weights to shrink.
NORM_LAYERS = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)


class Term(nn.Module):
    """One named, weighted summand of J.

    Subclasses implement `raw(outputs)`: the term's value before its weight, a
    scalar tensor. `reads` lists the output names it needs, so a mismatch with a
    task is found at start-up rather than mid-training.
    """

    kind: str = "term"
    # the optimizer settings of the term's own parameters (an ArcFace class-weight matrix, a
    # CLIP temperature), put in a parameter group of their own; None: the optimizer's
    lr: float | None = None
    weight_decay: float | None = None

    def __init__(self, name: str, weight: object, symbol: str, reads: Sequence[str] = ()) -> None:
        super().__init__()
        self.name = name
        self.weight: Weight = as_weight(weight, f"{self.kind}.{name}")
        self.symbol = symbol
        self.reads = tuple(reads)

    def raw(self, outputs: Mapping[str, Tensor]) -> Tensor:
        raise NotImplementedError

    @property
    def config_key(self) -> str:
        """Where the config sets this term: `loss.huber`, `regularizer.l2`."""
        return f"{self.kind}.{self.name}" if self.kind in ("loss", "regularizer") else self.name

    def bind(self, network: nn.Module) -> None:
        """Attach the network this term reads parameters from (no-op for losses)."""

    def fit_sizes(self, sizes: Mapping[str, int]) -> None:
        """Size the term's own parameters from the task's sizes (an embedding's width, the
        classes); no-op for terms without parameters of their own."""

    def has_after_step(self) -> bool:
        """Whether `after_step` does anything (the objective calls only those that do)."""
        return False

    def after_step(self) -> None:
        """Called after every optimizer step: a term may project its own parameters back into
        their range (CLIP clamps its temperature)."""

    def own_parameter_group(self) -> dict | None:
        """The optimizer group of the term's own trainable parameters when the term sets
        `lr` or `weight_decay` for them; None otherwise (they join the network's group)."""
        if self.lr is None and self.weight_decay is None:
            return None
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            raise ConfigError(
                f"{self.config_key} sets an optimizer setting (lr, weight_decay), but the term has "
                f"no parameters of its own; remove {self.config_key}.lr/weight_decay"
            )
        group: dict = {"params": params, "name": self.config_key}
        if self.lr is not None:
            group["lr"] = self.lr
        if self.weight_decay is not None:
            group["weight_decay"] = self.weight_decay
        return group

    def closed_form_gradient(self) -> dict[nn.Parameter, Tensor] | None:
        """∂raw/∂θ for each parameter the term reads, where a formula exists; else None
        (and attribution takes the gradient from autograd)."""
        return None

    def check_example(self, outputs: Mapping[str, Tensor]) -> None:
        """Refuse, at start-up, a setting that cannot fit outputs shaped like `outputs`."""

    def extra_repr(self) -> str:
        return f"name={self.name!r}, weight={self.weight}, reads={list(self.reads)}"


def as_columns(columns: object, key: str) -> int | list[int] | None:
    """`columns: 1` (one column, kept as a column) or `[0, 2]`; None: the whole output."""
    if columns is None:
        return None
    items = columns if isinstance(columns, Sequence) and not isinstance(columns, str) else None
    if items is not None and items and all(checks.is_number(c) and c == int(c) for c in items):
        return [int(c) for c in items]
    if checks.is_number(columns) and columns == int(columns):
        return int(columns)
    raise ConfigError(f"{key}.columns must be a column index or a list of them, got "
                      f"{checks.show(columns)}; e.g. {key}.columns=[1]")  # fmt: skip


class LossTerm(Term):
    """A loss: `fn(*[outputs[k] for k in reads])`, e.g. `HuberLoss()(pred, target)`.

    `fn` is any callable returning a scalar: one of torch's loss modules, or a
    plain function from `objectives.losses`. With `columns` every output it reads is
    first cut to those last-dimension columns (`columns: [1]`, or `1`): one output of a
    multi-output regression, so each output can be a term of its own (a multi-task
    objective that weighting policies balance).
    """

    kind = "loss"

    def __init__(
        self,
        name: str,
        fn: Callable[..., Tensor],
        reads: Sequence[str] = ("pred", "target"),
        weight: object = 1.0,
        symbol: str | None = None,
        columns: object = None,
        lr: object = None,
        weight_decay: object = None,
    ) -> None:
        reads = tuple(reads)
        super().__init__(name, weight, symbol or f"{name}({', '.join(reads)})", reads)
        # a torch module registers itself as a child and shows in repr; its parameters (if
        # any) are the term's own: trained, and saved in checkpoints, with the network's
        self.fn = fn
        if lr is not None:
            self.lr = checks.number(lr, f"loss.{name}.lr", low=0, low_open=True, example=0.01)
        if weight_decay is not None:
            self.weight_decay = checks.number(
                weight_decay, f"loss.{name}.weight_decay", low=0, example=0.0
            )
        self.columns = as_columns(columns, f"loss.{name}")
        if isinstance(self.columns, int):  # a slice keeps the column a column, without a copy
            self._cut: slice | list[int] | None = slice(self.columns, self.columns + 1)
        else:
            self._cut = self.columns

    def check_example(self, outputs: Mapping[str, Tensor]) -> None:
        if self.columns is None:
            return
        wanted = max(self.columns if isinstance(self.columns, list) else [self.columns])
        for key in self.reads:
            width = outputs[key].shape[-1] if outputs[key].ndim else 0
            if not -width <= wanted < width:
                raise ConfigError(
                    f"loss.{self.name}.columns={checks.show(self.columns)}, but `{key}` has "
                    f"{width} column(s) (0 to {width - 1}); choose columns the task produces"
                )

    def fit_sizes(self, sizes: Mapping[str, int]) -> None:
        if callable(getattr(self.fn, "fit_sizes", None)):
            with refused(self.config_key):
                self.fn.fit_sizes(sizes)

    def has_after_step(self) -> bool:
        return callable(getattr(self.fn, "after_step", None))

    def after_step(self) -> None:
        if self.has_after_step():
            self.fn.after_step()

    def raw(self, outputs: Mapping[str, Tensor]) -> Tensor:
        if self._cut is None:
            return self.fn(*(outputs[key] for key in self.reads))
        return self.fn(*(outputs[key][..., self._cut] for key in self.reads))


def select_parameters(network: nn.Module, exclude_bias_and_norm: bool) -> list[nn.Parameter]:
    """The trainable parameters a penalty applies to, optionally without biases and norm scales."""
    selected: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in network.modules():
        is_norm = isinstance(module, NORM_LAYERS)
        for local_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            if exclude_bias_and_norm and (is_norm or local_name.endswith("bias")):
                continue
            selected.append(param)
    return selected


class ParameterPenalty(Term):
    """A regularizer R(θ): `fn(parameters)` over the bound network's parameters.

    The parameter list is gathered once at `bind` time, not every step. With
    `exclude_bias_and_norm=True`, biases and normalisation-layer parameters are
    left out, the usual choice for weight decay.
    """

    kind = "regularizer"

    def __init__(
        self,
        name: str,
        fn: Callable[[Iterable[Tensor]], Tensor],
        weight: object = 1e-3,
        symbol: str | None = None,
        exclude_bias_and_norm: bool = False,
    ) -> None:
        super().__init__(name, weight, symbol or f"{name}(θ)")
        self.fn = fn
        self._gradient = closed_form_gradient(fn)  # None: autograd differentiates fn
        self.exclude_bias_and_norm = bool(exclude_bias_and_norm)
        self._parameters_read: list[nn.Parameter] | None = None

    def bind(self, network: nn.Module) -> None:
        params = select_parameters(network, self.exclude_bias_and_norm)
        if not params:
            raise ConfigError(
                f"regularizer '{self.name}' selects no trainable parameter of "
                f"{type(network).__name__}; drop it (regularizer=[]) or set "
                f"regularizer.{self.name}.exclude_bias_and_norm=false"
            )
        self._parameters_read = params
        with torch.no_grad():
            self.raw({})  # evaluate once now, so a bad setting fails at start-up, not mid-training

    def raw(self, outputs: Mapping[str, Tensor]) -> Tensor:
        if self._parameters_read is None:
            raise RuntimeError(
                f"regularizer '{self.name}' is not bound to a network; call Objective.bind(model)"
            )
        if self._gradient is not None:  # one autograd node with the closed-form gradient
            return ClosedFormPenalty.apply(self.fn, self._gradient, *self._parameters_read)
        return self.fn(self._parameters_read)

    def closed_form_gradient(self) -> dict[nn.Parameter, Tensor] | None:
        if self._gradient is None or self._parameters_read is None:
            return None
        with torch.no_grad():
            values = self._gradient(self._parameters_read)
        return dict(zip(self._parameters_read, values, strict=True))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, exclude_bias_and_norm={self.exclude_bias_and_norm}"
