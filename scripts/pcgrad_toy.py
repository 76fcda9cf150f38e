"""PCGrad against a plain sum on the two-objective toy of Navon et al. 2022 (Nash-MTL,
`experiments/toy/problem.py`, itself CAGrad's toy modified; f₁ scaled by 0.1).

    python scripts/pcgrad_toy.py                  # 5 starts × {constant, pcgrad}, 35000 steps
    python scripts/pcgrad_toy.py --steps 5000 --front

Both runs train through the project's own `Objective` (two terms reading the point `x`)
with Adam at lr 1e-3 from the paper's five starting points, as its trainer does. A run
ends Pareto-stationary when the min-norm point of the convex hull of the two gradients
(MGDA's criterion) has norm < 1e-3. `--front` also traces the Pareto front by minimising
weighted sums α·f₁ + (1 − α)·f₂ numerically (L-BFGS from several starts). Prints markdown.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor, nn

from objectives.objective import LossTerm, Objective
from objectives.objective.weighting import PCGrad

LOWER = 0.000005
SCALE = 0.1
STARTS = [(-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0)]
STATIONARY = 1e-3


def toy_losses(x: Tensor) -> tuple[Tensor, Tensor]:
    """(f₁, f₂) at the point x = (x₁, x₂), f₁ scaled by SCALE: the reference's formulas."""
    x1, x2 = x[0], x[1]
    f1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), LOWER).log() + 6
    f2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), LOWER).log() + 6
    c1 = torch.clamp(torch.tanh(x2 * 0.5), 0)
    f1_sq = ((-x1 + 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    f2_sq = ((-x1 - 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    c2 = torch.clamp(torch.tanh(-x2 * 0.5), 0)
    return SCALE * (f1 * c1 + f1_sq * c2), f2 * c1 + f2_sq * c2


def min_norm_in_hull(g1: Tensor, g2: Tensor) -> float:
    """‖α·g₁ + (1 − α)·g₂‖ minimised over α ∈ [0, 1] (closed form for two vectors)."""
    diff = g1 - g2
    denominator = float(diff @ diff)
    alpha = 0.5 if denominator == 0 else min(max(float((g2 - g1) @ g2) / denominator, 0.0), 1.0)
    return float((alpha * g1 + (1 - alpha) * g2).norm())


def hull_norm_at(point: Tensor) -> float:
    x = point.detach().double().requires_grad_(True)
    f1, f2 = toy_losses(x)
    (g1,) = torch.autograd.grad(f1, x, retain_graph=True)
    (g2,) = torch.autograd.grad(f2, x)
    return min_norm_in_hull(g1, g2)


class Point(nn.Module):
    """The toy's only parameter: the point x."""

    def __init__(self, start: tuple[float, float]) -> None:
        super().__init__()
        self.x = nn.Parameter(torch.tensor(start))


def objective(policy: str) -> Objective:
    terms = [
        LossTerm("f1", fn=lambda x: toy_losses(x)[0], reads=["x"], symbol="f₁(x)"),
        LossTerm("f2", fn=lambda x: toy_losses(x)[1], reads=["x"], symbol="f₂(x)"),
    ]
    return Objective(terms, weighting=PCGrad(seed=0) if policy == "pcgrad" else None)


def run(policy: str, start: tuple[float, float], steps: int) -> tuple[Tensor, float]:
    point = Point(start)
    J = objective(policy).bind(point)
    optimizer = torch.optim.Adam(point.parameters(), lr=1e-3)
    for step in range(steps):
        optimizer.zero_grad()
        J({"x": point.x}, step).total.backward()
        optimizer.step()
    return point.x.detach(), hull_norm_at(point.x)


def weighted_sum_closure(x: Tensor, optimizer: torch.optim.Optimizer, alpha: float):
    def closure() -> Tensor:
        optimizer.zero_grad()
        f1, f2 = toy_losses(x)
        value = alpha * f1 + (1 - alpha) * f2
        value.backward()
        return value

    return closure


def pareto_front(alphas: list[float]) -> list[tuple[float, float, float]]:
    """(α, x₁, x₂) minimising α·f₁ + (1 − α)·f₂, the best of several L-BFGS starts."""
    found = []
    for alpha in alphas:
        best = None
        for start in [(-7.0, -8.0), (0.0, -8.0), (7.0, -8.0), (0.0, -2.0)]:
            x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
            optimizer = torch.optim.LBFGS(
                [x], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15,
                line_search_fn="strong_wolfe",
            )  # fmt: skip
            value = float(optimizer.step(weighted_sum_closure(x, optimizer, alpha)).detach())
            if best is None or value < best[0]:
                best = (value, float(x[0].detach()), float(x[1].detach()))
        found.append((alpha, best[1], best[2]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=35000, help="Adam steps a run (paper: 35000)")
    parser.add_argument("--front", action="store_true", help="also trace the Pareto front")
    args = parser.parse_args()
    print(f"{args.steps} Adam steps (lr 1e-3); Pareto-stationary: ‖min-norm d‖ < {STATIONARY}\n")
    print("| start | policy | end x | ‖min-norm d‖ | stationary | s |")
    print("| --- | --- | --- | --- | --- | --- |")
    counts = {}
    for policy in ("constant", "pcgrad"):
        counts[policy] = 0
        for start in STARTS:
            begun = time.perf_counter()
            end, norm = run(policy, start, args.steps)
            counts[policy] += norm < STATIONARY
            seconds = time.perf_counter() - begun
            mark = "yes" if norm < STATIONARY else "no"
            print(f"| {start} | {policy} | ({end[0]:.3f}, {end[1]:.3f}) | {norm:.2e} | {mark} | "
                  f"{seconds:.1f} |")  # fmt: skip
    print()
    for policy, count in counts.items():
        print(f"{policy}: {count} of {len(STARTS)} starts end Pareto-stationary")
    if args.front:
        print("\n| α | x₁ | x₂ |\n| --- | --- | --- |")
        for alpha, x1, x2 in pareto_front([0.01, 0.3, 0.7, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]):
            print(f"| {alpha} | {x1:.4f} | {x2:.4f} |")


if __name__ == "__main__":
    main()
