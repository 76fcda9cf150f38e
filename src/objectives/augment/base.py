"""What every augmentation shares: a name for its messages, a probability, and its
random numbers.

An op draws all its random numbers for a batch in one call, shape (N, k), so a batch costs a
few kernel launches however many images it holds. They come from torch's global RNG on the
batch's device (so `seed_everything` makes runs reproducible) or from the op's own
`torch.Generator` when it is given one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from objectives.augment import checks
from objectives.errors import ConfigError


class AugmentOp(nn.Module):
    """An augmentation applied to a whole batch at once, each image with probability `p`.

    `name` is how messages call it: `Augment` names each op after its config key
    (`augment.crop`); one built on its own is called by its class name.
    """

    def __init__(
        self, p: float = 1.0, *, name: str | None = None, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.name = name or type(self).__name__
        self.p = checks.probability(p, f"{self.name}.p")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ConfigError(
                f"{self.name}.generator must be a torch.Generator or None, "
                f"got {type(generator).__name__}"
            )
        self.generator: torch.Generator | None = generator

    def uniform(self, x: Tensor, columns: int) -> Tensor:
        """(N, columns) uniform numbers in [0, 1), float32 on the batch's device."""
        shape = (x.shape[0], columns)
        if self.generator is None:
            return torch.rand(shape, device=x.device)
        return torch.rand(shape, generator=self.generator, device=self.generator.device).to(
            x.device
        )

    def normal(self, x: Tensor) -> Tensor:
        """Standard normal numbers shaped and typed like `x`, on its device."""
        if self.generator is None:
            return torch.randn_like(x)
        noise = torch.randn(
            x.shape, generator=self.generator, device=self.generator.device, dtype=x.dtype
        )
        return noise.to(x.device)

    def chosen(self, u: Tensor) -> Tensor | None:
        """Which images are augmented, from a column of uniforms; None when all are (p = 1)."""
        return None if self.p >= 1 else u < self.p
