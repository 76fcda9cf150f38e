"""The objective J: a weighted sum of named terms, reported term by term.

`Objective(outputs)` returns the total that is minimised together with every
term's raw and weighted value, so a task can log what each term contributes
without computing anything twice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from objectives.errors import ConfigError
from objectives.objective.tags import stacked_suffixes
from objectives.objective.term import Term
from objectives.refusals import refused


@dataclass(frozen=True)
class ObjectiveValue:
    """One evaluation of J: `total` = Σ `weighted`; `weighted[n]` = w_n · `raw[n]`, with
    `weights[n]` = w_n (a float from the term's schedule, or a tensor a weighting policy
    chose; under `uncertainty` `weighted[n]` also holds its + sₙ)."""

    total: Tensor
    raw: dict[str, Tensor]
    weighted: dict[str, Tensor]
    weights: dict[str, float | Tensor] = field(default_factory=dict)

    def stacked(self) -> Tensor:
        """[total, weighted..., raw...] as one detached vector: one op to aggregate or log
        (taken outside autograd, which would otherwise record a node no backward uses)."""
        with torch.no_grad():
            return torch.stack([self.total, *self.weighted.values(), *self.raw.values()])

    def weight_vector(self) -> Tensor:
        """[weight of each term] as one detached vector, for a logging step: on the host when
        every weight is a Python float (a schedule's), else where the policy's weights are,
        the floats filled in there (`torch.full`: no copy from the host, so no sync)."""
        devices = [w.device for w in self.weights.values() if isinstance(w, Tensor)]
        if not devices:
            return torch.tensor(list(self.weights.values()), dtype=torch.float64)
        dtype = self.total.dtype
        with torch.no_grad():
            return torch.stack([
                w.detach().to(dtype) if isinstance(w, Tensor)
                else torch.full((), float(w), dtype=dtype, device=devices[0])
                for w in self.weights.values()
            ])  # fmt: skip


class Objective(nn.Module):
    """J(θ) = Σ w_i·L_i + Σ λ_j·R_j(θ) over uniquely named terms."""

    def __init__(
        self,
        terms: Iterable[Term],
        symbol: str = "J(θ)",
        weighting: nn.Module | None = None,  # a WeightingPolicy (objective/weighting/)
    ) -> None:
        super().__init__()
        terms = list(terms)
        if not terms:
            raise ConfigError("the objective has no term; pick a loss, e.g. loss=mse")
        names = [t.name for t in terms]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(f"objective terms must have unique names, repeated: {duplicated}")
        self.terms = nn.ModuleList(terms)
        self._after_step_terms: list[Term] | None = None  # found at the first step
        self.symbol = symbol
        # the policy that sets the weights each step (objective/weighting/); None: each
        # term's own weight, at no cost (`weighting=constant`)
        self.weighting = weighting.attach(self) if weighting is not None else None

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.terms]

    @property
    def reads(self) -> set[str]:
        return {key for t in self.terms for key in t.reads}

    def stacked_names(self) -> list[str]:
        """Tag suffixes in the order of `ObjectiveValue.stacked()`."""
        return stacked_suffixes(self.names)

    def bind(self, network: nn.Module) -> Objective:
        """Point every parameter penalty at `network`; returns self for chaining."""
        for term in self.terms:
            with refused(term.config_key):
                term.bind(network)
        if self.weighting is not None:
            self.weighting.bind(network)
        return self

    def fit_sizes(self, sizes: Mapping[str, int]) -> Objective:
        """Size the terms' own parameters (ArcFace's class weights) from the task's sizes."""
        for term in self.terms:
            term.fit_sizes(sizes)
        return self

    def after_step(self) -> None:
        """After each optimizer step: each term keeps its own parameters in range (the terms
        with such a hook are found once: this runs every step)."""
        if self._after_step_terms is None:
            self._after_step_terms = [t for t in self.terms if t.has_after_step()]
        for term in self._after_step_terms:
            term.after_step()

    def own_parameter_groups(self) -> list[dict]:
        """The optimizer groups of terms that set `lr`/`weight_decay` for their parameters."""
        return [g for g in (t.own_parameter_group() for t in self.terms) if g is not None]

    @torch.no_grad()
    def try_on(self, outputs: Mapping[str, Tensor]) -> None:
        """Run every term once on `outputs` (a tiny example), so that a setting torch refuses
        only when the term runs (a negative Huber δ) fails at start-up, naming the term."""
        for term in self.terms:
            term.check_example(outputs)
            with refused(term.config_key):
                term.raw(outputs)

    def check_fits(self, produces: Sequence[str], task: str) -> None:
        """Fail before training if a term reads an output the task does not produce."""
        for term in self.terms:
            missing = [key for key in term.reads if key not in produces]
            if missing:
                raise ConfigError(
                    f"{term.kind} '{term.name}' reads {', '.join(missing)}, but task '{task}' "
                    f"produces only {', '.join(produces)}; choose a {term.kind} that reads those"
                )

    def forward(self, outputs: Mapping[str, Tensor], step: int = 0) -> ObjectiveValue:
        raw: dict[str, Tensor] = {}
        weighted: dict[str, Tensor] = {}
        weights: dict[str, float | Tensor] = {}
        total: Tensor | None = None
        for term in self.terms:
            value = term.raw(outputs)
            raw[term.name] = value
            weight = weights[term.name] = term.weight(step)
            # w = 1 leaves the value as it is: no multiplication in the forward or backward pass
            contribution = value if weight == 1.0 else value * weight
            weighted[term.name] = contribution
            total = contribution if total is None else total + contribution
        assert total is not None  # the constructor refuses an empty objective
        value = ObjectiveValue(total, raw, weighted, weights)
        return value if self.weighting is None else self.weighting(self, value, step)

    def term_gradients(
        self,
        value: ObjectiveValue,
        params: Sequence[nn.Parameter],
        step: int = 0,
        names: Collection[str] | None = None,
    ) -> Tensor:
        """∂(w_i·L_i)/∂θ for every term (or those in `names`, in the objective's order), as
        rows of a (terms × parameters) matrix.

        Terms with a closed-form gradient use it; the others take autograd on the graph
        the step already built (`retain_graph=True`: the step's own backward still runs).
        """
        rows = []
        for term in self.terms:
            if names is not None and term.name not in names:
                continue
            closed = term.closed_form_gradient()
            if closed is not None:
                weight = value.weights.get(term.name, term.weight(step))
                grads = [weight * closed[p] if p in closed else None for p in params]
            elif value.weighted[term.name].requires_grad:
                grads = torch.autograd.grad(
                    value.weighted[term.name], params, retain_graph=True, allow_unused=True
                )
            else:
                grads = [None] * len(params)
            rows.append(
                torch.cat(
                    [
                        (g if g is not None else torch.zeros_like(p)).reshape(-1)
                        for g, p in zip(grads, params, strict=True)
                    ]
                )
            )
        return torch.stack(rows)

    def formula(self) -> str:
        """E.g. `J(θ) = 1·huber(ŷ, y) + 0.001·‖θ‖₂²`; a term that is itself a sum is
        bracketed, so its weight visibly covers every summand: `1·[softplus(−D(x)) + ...]`."""
        chosen = self.weighting.weighs if self.weighting is not None else ()
        parts = [
            f"{'w_t' if term.name in chosen else term.weight}·{bracketed(term.symbol)}"
            for term in self.terms
        ]
        policy = f" [{self.weighting.label}]" if self.weighting is not None else ""
        return f"{self.symbol} = " + " + ".join(parts) + policy

    def __str__(self) -> str:
        return self.formula()


def bracketed(symbol: str) -> str:
    """`symbol` in square brackets when it is a sum or difference at its top level (a ` + `
    or ` − ` outside every bracket), else as it is."""
    depth = 0
    for i, char in enumerate(symbol):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and char in "+−-" and symbol[i - 1 : i] == " " == symbol[i + 1 : i + 2]:
            return f"[{symbol}]"
    return symbol
