"""How a GAN's generated samples are judged each validation epoch, and drawn.

A judge is a plain object (not a module of the task: its feature networks are not trained
and not saved in checkpoints) with `evaluate(samples) -> {name: value}` and
`draw(samples) -> figure or image`.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from objectives.data.ring import ring_centres
from objectives.metrics.frechet import FrechetDigitsDistance
from objectives.metrics.pictures import image_grid
from objectives.metrics.ring import mode_coverage, ring_scatter


class RingJudge:
    """Modes covered (of `modes`) and the share of high-quality samples (within 3σ of a
    mode) on the ring of Gaussians; a scatter of the samples over the modes."""

    def __init__(
        self, modes: int = 8, radius: float = 2.0, std: float = 0.02, min_share: float = 0.25
    ) -> None:
        self.centres = ring_centres(modes, radius)
        self.std, self.min_share = std, min_share

    def evaluate(self, samples: Tensor) -> dict[str, Tensor]:
        found = mode_coverage(samples, self.centres.to(samples.device), self.std, self.min_share)
        return {
            "modes_covered": found["modes_covered"].float(),
            "high_quality": found["high_quality"],
        }

    def draw(self, samples: Tensor) -> Any:
        return ring_scatter(samples.cpu(), self.centres, self.std)


class DigitsJudge:
    """The Fréchet distance of generated digits to real ones in the feature space of a
    digits classifier (`val/fid_digits`); a grid of the first 64 samples."""

    def __init__(self, grid: int = 64, scale: int = 4) -> None:
        self.grid, self.scale = grid, scale
        self._fid: FrechetDigitsDistance | None = None  # built (and its classifier) on first use

    def evaluate(self, samples: Tensor) -> dict[str, Tensor]:
        if self._fid is None:
            self._fid = FrechetDigitsDistance()
        self._fid = self._fid.to(samples.device)
        self._fid.reset()
        self._fid.update(samples.clamp(0, 1), real=False)
        return {"fid_digits": self._fid.compute().float()}

    def draw(self, samples: Tensor) -> Tensor:
        return image_grid(samples[: self.grid].detach().cpu(), nrow=8, scale=self.scale)


__all__ = ["DigitsJudge", "RingJudge"]
