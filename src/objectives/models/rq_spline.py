"""The monotone rational-quadratic spline of Durkan et al. (2019), elementwise, with
identity tails: inside [−B, B] K bins of learned widths and heights, joined at knots with
learned positive derivatives; outside, y = x (the boundary derivatives are 1, so the map
and its derivative are continuous there). Each bin is a ratio of quadratics whose inverse
is the root of a quadratic, so the inverse is exact, not iterated.

The unconstrained parameters of one feature are 3K − 1 numbers: K widths, K heights
(softmax, each at least `MIN_BIN` of the interval) and K − 1 interior derivatives
(softplus, at least `MIN_DERIVATIVE`). All zeros give the identity map: uniform bins and
derivatives of 1 (the softplus is shifted for that), so a flow whose conditioners end in
zeros starts as the identity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MIN_BIN = 1e-3
MIN_DERIVATIVE = 1e-3
# softplus(SHIFT) + MIN_DERIVATIVE = 1: zero parameters give derivatives of 1
SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def parameters_per_feature(bins: int) -> int:
    return 3 * bins - 1


def _knots(raw: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    """Bin sizes (…, K) and knot positions (…, K + 1) from −B to B."""
    bins = raw.shape[-1]
    sizes = MIN_BIN + (1 - MIN_BIN * bins) * torch.softmax(raw, dim=-1)
    knots = F.pad(torch.cumsum(sizes, dim=-1), (1, 0))
    knots = 2 * bound * knots - bound
    # exactly ±B, whatever rounding; shaped from a tensor (not `full_like`), so an exported
    # network keeps its batch size free
    end = knots[..., :1] * 0 + bound
    knots = torch.cat([-end, knots[..., 1:-1], end], dim=-1)
    return knots[..., 1:] - knots[..., :-1], knots


def _split(params: Tensor, bound: float) -> tuple[Tensor, ...]:
    bins = (params.shape[-1] + 1) // 3
    raw_w, raw_h, raw_d = params[..., :bins], params[..., bins : 2 * bins], params[..., 2 * bins :]
    widths, xs = _knots(raw_w, bound)
    heights, ys = _knots(raw_h, bound)
    inner = MIN_DERIVATIVE + F.softplus(raw_d + SHIFT)
    ones = inner[..., :1] * 0 + 1  # shaped from a tensor: the batch size stays free in export
    derivatives = torch.cat([ones, inner, ones], dim=-1)  # (…, K + 1), 1 at ±B
    return widths, xs, heights, ys, derivatives


def _bin_of(value: Tensor, knots: Tensor) -> Tensor:
    """The bin (0 … K − 1) each value falls in, (…, 1)."""
    index = (value[..., None] >= knots).sum(-1, keepdim=True) - 1
    return index.clamp(0, knots.shape[-1] - 2)


def _pick(table: Tensor, index: Tensor) -> Tensor:
    return table.gather(-1, index)[..., 0]


def rq_spline(x: Tensor, params: Tensor, bound: float, inverse: bool = False):
    """y = g(x) and log|g′(x)| elementwise (forward), or x = g⁻¹(y) and log|g′(x)|
    (inverse, with `x` holding y). `params` is x's shape plus (3K − 1,)."""
    widths, xs, heights, ys, derivatives = _split(params, bound)
    inside = (x >= -bound) & (x <= bound)
    value = x.clamp(-bound, bound)  # the spline's branch is finite everywhere; tails masked
    index = _bin_of(value, ys if inverse else xs)
    x_k, w_k = _pick(xs, index), _pick(widths, index)
    y_k, h_k = _pick(ys, index), _pick(heights, index)
    d_k, d_k1 = _pick(derivatives, index), _pick(derivatives[..., 1:], index)
    slope, curvature = h_k / w_k, d_k1 + d_k - 2 * h_k / w_k
    if inverse:  # θ ∈ [0, 1] is the root of a θ² + b θ + c = 0 (the stable form)
        shifted = value - y_k
        a = h_k * (slope - d_k) + shifted * curvature
        b = h_k * d_k - shifted * curvature
        c = -slope * shifted
        theta = (2 * c) / (-b - (b.square() - 4 * a * c).clamp_min(0).sqrt())
    else:
        theta = (value - x_k) / w_k
    one_theta = theta * (1 - theta)
    denominator = slope + curvature * one_theta
    if inverse:
        out = theta * w_k + x_k
    else:
        out = y_k + h_k * (slope * theta.square() + d_k * one_theta) / denominator
    numerator = slope.square() * (
        d_k1 * theta.square() + 2 * slope * one_theta + d_k * (1 - theta).square()
    )
    log_derivative = numerator.log() - 2 * denominator.log()
    out = torch.where(inside, out, x)
    return out, torch.where(inside, log_derivative, torch.zeros_like(log_derivative))
