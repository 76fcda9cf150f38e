"""Penalties on a GAN critic's input gradient: WGAN-GP and R1.

Both are discriminator terms: they read the step's `real` (and `fake`) inputs, run the
critic D they are bound to on them once more and penalise ∇ₓD(x), the gradient of the
critic's score with respect to its input, one sample at a time:

- `GradientPenalty` (Gulrajani et al. 2017): E[(‖∇D(x̂)‖₂ − 1)²] on random interpolates
  x̂ = ε·x + (1 − ε)·G(z), ε ~ U(0, 1) per sample: a soft 1-Lipschitz constraint for WGAN.
- `R1Penalty` (Mescheder et al. 2018): ½·E‖∇D(x)‖₂² on real data; with weight γ the term
  is the paper's γ/2·E‖∇D(x)‖².

In training the penalty's graph reaches the critic's parameters (`create_graph=True`), so
the critic's optimiser step minimises it. In validation (run under `torch.no_grad()`) the
input gradient is still computed (inside `torch.enable_grad()`) but no graph is kept.
`torch.inference_mode()` forbids any gradient, so these terms cannot be evaluated there.

The gradient of the batch's summed score gives every sample's own input gradient only when
samples do not interact inside the critic: no batch norm in training mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from objectives import checks
from objectives.errors import ConfigError
from objectives.objective.term import Term

__all__ = ["GradientPenalty", "R1Penalty", "input_gradient"]


def input_gradient(critic: nn.Module, x: Tensor) -> Tensor:
    """∇ₓ D(x) for every sample of `x`, flattened to (N, features).

    `x` is detached (no gradient flows back into whatever produced it, e.g. the generator).
    The graph from the gradient to the critic's parameters is kept only when the caller has
    gradients enabled (training); under `torch.no_grad()` the values alone come back.
    """
    create_graph = torch.is_grad_enabled()
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        score = critic(x)
        (grad,) = torch.autograd.grad(score.sum(), x, create_graph=create_graph)
    return grad.reshape(len(x), -1)


def _reads(reads: Sequence[str], name: str, count: int, what: str) -> tuple[str, ...]:
    """`reads` as a tuple if it names `count` inputs: `what`, e.g. `[real, fake]`."""
    reads = tuple(reads)
    if len(reads) != count:
        raise ConfigError(f"regularizer.{name}.reads must name {what}; got {list(reads)}")
    return reads


class _CriticPenalty(Term):
    """A term on the critic it is bound to, kept out of this module's children."""

    kind = "regularizer"

    def __init__(self, name: str, weight: object, symbol: str, reads: Sequence[str]) -> None:
        super().__init__(name, weight, symbol, reads)
        # a tuple, not an attribute holding the module: the critic is not registered as a
        # child, so its parameters appear once in the task's module tree and state dict
        self._critic: tuple[nn.Module, ...] = ()

    def bind(self, network: nn.Module) -> None:
        """Bind to the critic: `network` itself, or its `.critic` (e.g. `GANNetworks`)."""
        critic = getattr(network, "critic", network)
        if not isinstance(critic, nn.Module):
            raise ConfigError(
                f"regularizer '{self.name}' must be bound to a critic network, "
                f"got {type(critic).__name__}"
            )
        self._critic = (critic,)

    @property
    def critic(self) -> nn.Module:
        if not self._critic:
            raise ConfigError(
                f"regularizer '{self.name}' is not bound to a critic; bind the discriminator's "
                "objective to the critic first (Objective.bind(critic))"
            )
        return self._critic[0]


class GradientPenalty(_CriticPenalty):
    """WGAN-GP: mean over the batch of (‖∇ₓ̂ D(x̂)‖₂ − target)², x̂ = ε·real + (1 − ε)·fake.

    ε ~ U(0, 1) is drawn once per sample (from torch's global generator) and broadcast over
    the sample's other dimensions; the norm is over all of a sample's dimensions.
    """

    def __init__(
        self,
        name: str,
        weight: object = 10.0,
        symbol: str = "(‖∇D(x̂)‖−1)²",
        reads: Sequence[str] = ("real", "fake"),
        target: float = 1.0,
    ) -> None:
        reads = _reads(reads, name, 2, "the real and the generated inputs, e.g. [real, fake]")
        target = checks.number(
            target, f"regularizer.{name}.target", low=0,
            what="a number ≥ 0 (the gradient norm to hold the critic at, 1 for WGAN-GP)",
        )  # fmt: skip
        super().__init__(name, weight, symbol, reads)
        self.target = target

    def raw(self, outputs: Mapping[str, Tensor]) -> Tensor:
        critic = self.critic
        real, fake = (outputs[key].detach() for key in self.reads)
        if real.shape != fake.shape:
            raise ValueError(
                f"regularizer '{self.name}': {self.reads[0]} {tuple(real.shape)} and "
                f"{self.reads[1]} {tuple(fake.shape)} must have the same shape to interpolate"
            )
        shape = (len(real),) + (1,) * (real.dim() - 1)
        eps = torch.rand(shape, dtype=real.dtype, device=real.device)
        mixed = torch.lerp(fake, real, eps)  # ε·real + (1 − ε)·fake
        norm = torch.linalg.vector_norm(input_gradient(critic, mixed), dim=1)
        return (norm - self.target).square().mean()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, target={self.target}"


class R1Penalty(_CriticPenalty):
    """R1: ½·mean over the batch of ‖∇ₓ D(x)‖₂² on real data; weight γ gives γ/2·E‖∇D(x)‖²."""

    def __init__(
        self,
        name: str,
        weight: object = 10.0,
        symbol: str = "½‖∇D(x)‖²",
        reads: Sequence[str] = ("real",),
    ) -> None:
        reads = _reads(reads, name, 1, "the real inputs only, e.g. [real]")
        super().__init__(name, weight, symbol, reads)

    def raw(self, outputs: Mapping[str, Tensor]) -> Tensor:
        critic = self.critic
        grad = input_gradient(critic, outputs[self.reads[0]])
        return 0.5 * grad.square().sum(dim=1).mean()
