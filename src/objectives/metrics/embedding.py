"""How good are embeddings: k-nearest-neighbour and linear-probe accuracy on whole splits.

Both take the embeddings of a labelled "train" split and of a "query"/"test" split as
tensors (N, D) with integer labels (N,), on any one device, and return a 0-d float tensor
on that device. They are computed full-batch (the splits are small enough to sit in memory),
deterministically, in float32 with autocast off, and without scikit-learn.

When any embedding is NaN or ±Inf (a diverged encoder) both return NaN rather than raise,
so the metric shows the failure instead of ending the run; malformed inputs (wrong shapes,
mismatched lengths, a bad `k`) raise a one-line `ConfigError`.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from objectives.errors import ConfigError

# Elements of the (queries, k, classes) one-hot vote tensor built at a time.
_VOTE_BUDGET = 1 << 24


def knn_predict(
    train_z: Tensor,
    train_y: Tensor,
    query_z: Tensor,
    k: int = 20,
    temperature: float | None = None,
    chunk: int = 4096,
) -> Tensor:
    """The k-NN class of each query: (N_query,) int64 labels on the input device.

    Neighbours are the `k` training embeddings of highest cosine similarity (both sets are
    L2-normalised). The vote:

    - `temperature=None`: one vote per neighbour; among classes tied for most votes the one
      with the nearer neighbour wins (the class that appears first in the similarity-sorted
      neighbour list). Exact integer arithmetic, no epsilon.
    - `temperature=τ`: InstDisc's similarity-weighted vote, class score Σ exp(s/τ) over its
      neighbours (computed as exp((s − s_max)/τ), same argmax, never underflowing to all
      zeros); an exact tie in these float sums goes to the lower class index.

    Queries are processed `chunk` at a time, so peak memory is about chunk × N_train × 4
    bytes (4096 × 60,000 ≈ 1 GB); lower `chunk` on a small GPU or on CPU. `k` larger than
    the training set is an error, not clamped: a silently smaller k would change the metric.
    Neighbours at exactly equal similarity (duplicate embeddings) are ordered as
    `torch.topk` leaves them.
    """
    _check_knn(train_z, train_y, query_z, k, temperature, chunk)
    device = train_z.device
    num_classes = int(train_y.max()) + 1
    with torch.no_grad(), _plain_float(device):
        train = F.normalize(_as_float(train_z), dim=1)
        query = F.normalize(_as_float(query_z), dim=1)
        labels = train_y.to(device).long()
        # k - rank: k for the nearest neighbour, 1 for the k-th.
        closeness = torch.arange(k, 0, -1, device=device)
        sub = max(1, _VOTE_BUDGET // (k * num_classes))
        preds = []
        for start in range(0, query.shape[0], chunk):
            sims, idx = (query[start : start + chunk] @ train.T).topk(k, dim=1)
            for s in range(0, idx.shape[0], sub):
                votes = F.one_hot(labels[idx[s : s + sub]], num_classes)  # (m, k, C)
                if temperature is None:
                    counts = votes.sum(1)
                    nearest = (votes * closeness[:, None]).amax(1)
                    score = counts * (k + 1) + nearest  # counts first, then the nearer class
                else:
                    top = sims[s : s + sub]
                    weight = torch.exp((top - top[:, :1]) / temperature)
                    score = (votes.to(weight.dtype) * weight[:, :, None]).sum(1)
                preds.append(score.argmax(1))
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long, device=device)


def knn_accuracy(
    train_z: Tensor,
    train_y: Tensor,
    query_z: Tensor,
    query_y: Tensor,
    k: int = 20,
    temperature: float | None = None,
    chunk: int = 4096,
) -> Tensor:
    """Fraction of queries whose k-NN vote among the training embeddings (`knn_predict`)
    is their label; a 0-d float tensor on the input device, NaN if any embedding is
    non-finite."""
    _check_pair("query", query_z, query_y)
    if query_z.shape[0] == 0:
        raise ConfigError("knn: no query embeddings to score")
    _check_knn(train_z, train_y, query_z, k, temperature, chunk)
    if not _finite(train_z, query_z):
        return torch.tensor(math.nan, device=query_z.device)
    preds = knn_predict(train_z, train_y, query_z, k=k, temperature=temperature, chunk=chunk)
    return (preds == query_y.to(preds.device).long()).float().mean()


def linear_probe_accuracy(
    train_z: Tensor,
    train_y: Tensor,
    test_z: Tensor,
    test_y: Tensor,
    num_classes: int | None = None,
    epochs: int = 100,
    lr: float = 1.0,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> Tensor:
    """Test accuracy of a multinomial logistic regression fitted on the train embeddings.

    Features are standardised with the training mean and standard deviation (constant
    features are centred and left unscaled, as scikit-learn's StandardScaler does). The
    classifier is one `nn.Linear`, fitted full-batch to minimise mean cross-entropy
    + weight_decay/2 · ‖W‖² (bias not penalised) with L-BFGS and a strong-Wolfe line
    search: `epochs` is its iteration budget (it stops earlier once the gradient vanishes)
    and `lr` its initial step.
    L-BFGS rather than Adam because the problem is smooth and convex: it reaches the
    optimum in tens of full-batch iterations on both digits (1,250 × 64) and MNIST-sized
    (60,000 × 128) embeddings with no learning rate to tune, so the number is a property of
    the embeddings, not of the probe's optimiser. weight_decay=1e-3 is about scikit-learn's
    default C=1 on digits (its penalty is ‖W‖²/(2·C·N), i.e. weight_decay = 1/(C·N); pass
    1/N to reproduce LogisticRegression() exactly) and keeps the weights bounded on
    separable embeddings. Measured: L-BFGS stops after ~55-65 iterations on digits pixels
    and ~25 on a 60,000 × 128 problem, so the probe is cheap next to an epoch.

    Deterministic given `seed`: the initial weights come from a local `torch.Generator`;
    the global RNG is not touched. Runs under `torch.no_grad()` and `torch.inference_mode()`
    (gradients are enabled locally, inputs are cloned out of inference mode and detached),
    so it can be called from validation/test hooks. `num_classes` defaults to the largest
    label in either split + 1. Returns a 0-d float tensor on the input device, NaN if any
    embedding is non-finite.
    """
    _check_pair("train", train_z, train_y)
    _check_pair("test", test_z, test_y)
    if test_z.shape[1] != train_z.shape[1]:
        raise ConfigError(
            f"linear probe: test embeddings have {test_z.shape[1]} features, "
            f"train embeddings {train_z.shape[1]}"
        )
    if test_z.device != train_z.device:
        raise ConfigError(
            f"linear probe: train embeddings on {train_z.device} but test on {test_z.device}"
        )
    if test_z.shape[0] == 0:
        raise ConfigError("linear probe: no test embeddings to score")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"linear probe: epochs must be an integer >= 1, got {epochs!r}")
    if not lr > 0 or not weight_decay >= 0:
        raise ConfigError(
            f"linear probe: need lr > 0 and weight_decay >= 0, got lr={lr}, "
            f"weight_decay={weight_decay}"
        )
    largest = max(int(train_y.max()), int(test_y.max()))
    if num_classes is None:
        num_classes = largest + 1
    elif largest >= num_classes:
        raise ConfigError(
            f"linear probe: label {largest} found but num_classes={num_classes}; "
            f"labels must be 0..num_classes-1"
        )
    device = train_z.device
    if not _finite(train_z, test_z):
        return torch.tensor(math.nan, device=device)

    with torch.inference_mode(False), torch.enable_grad(), _plain_float(device):
        # Clone out of inference mode: inference tensors cannot be saved for backward.
        x = _as_float(train_z).detach().clone()
        y = train_y.detach().to(device).clone().long()
        x_test = _as_float(test_z).detach().clone()
        mean = x.mean(0)
        std = x.std(0, unbiased=False)
        # Constant features stay unscaled, even when float32 rounding gives them a tiny std.
        varies = (x.amax(0) > x.amin(0)) & (std > 0)
        std = torch.where(varies, std, torch.ones_like(std))
        x = (x - mean) / std
        x_test = (x_test - mean) / std

        # skip_init: no draw from the global RNG; the weights come from the local generator.
        probe = nn.utils.skip_init(nn.Linear, x.shape[1], num_classes, device=device)
        gen = torch.Generator().manual_seed(seed)
        bound = 1.0 / math.sqrt(x.shape[1])
        with torch.no_grad():
            probe.weight.copy_(torch.rand(probe.weight.shape, generator=gen) * 2 * bound - bound)
            probe.bias.copy_(torch.rand(probe.bias.shape, generator=gen) * 2 * bound - bound)
        probe.to(x.dtype)
        opt = torch.optim.LBFGS(
            probe.parameters(),
            lr=lr,
            max_iter=epochs,
            history_size=20,
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
            line_search_fn="strong_wolfe",
        )

        def closure() -> Tensor:
            opt.zero_grad(set_to_none=False)
            loss = F.cross_entropy(probe(x), y)
            if weight_decay:
                loss = loss + 0.5 * weight_decay * probe.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            pred = probe(x_test).argmax(1)
            return (pred == test_y.to(device).long()).float().mean()


def _check_knn(
    train_z: Tensor,
    train_y: Tensor,
    query_z: Tensor,
    k: int,
    temperature: float | None,
    chunk: int,
) -> None:
    _check_pair("train", train_z, train_y)
    if query_z.dim() != 2 or query_z.shape[1] != train_z.shape[1]:
        raise ConfigError(
            f"knn: query embeddings must be (N, {train_z.shape[1]}) like the training ones, "
            f"got {tuple(query_z.shape)}"
        )
    if query_z.device != train_z.device:
        raise ConfigError(
            f"knn: train embeddings on {train_z.device} but queries on {query_z.device}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"knn: k must be an integer >= 1, got {k!r}")
    if k > train_z.shape[0]:
        raise ConfigError(
            f"knn: k={k} is larger than the training set ({train_z.shape[0]} embeddings); lower k"
        )
    if temperature is not None and not temperature > 0:
        raise ConfigError(f"knn: temperature must be > 0 or None, got {temperature!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(f"knn: chunk must be an integer >= 1, got {chunk!r}")


def _check_pair(name: str, z: Tensor, y: Tensor) -> None:
    if not isinstance(z, Tensor) or not isinstance(y, Tensor):
        raise ConfigError(f"{name}: embeddings and labels must be tensors")
    if z.dim() != 2:
        raise ConfigError(f"{name} embeddings must be (N, D), got shape {tuple(z.shape)}")
    if y.dim() != 1 or y.shape[0] != z.shape[0]:
        raise ConfigError(
            f"{name}: {z.shape[0]} embeddings but labels of shape {tuple(y.shape)}; "
            f"need one label per embedding"
        )
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ConfigError(f"{name} labels must be integer class indices, got {y.dtype}")
    if y.numel() and int(y.min()) < 0:
        raise ConfigError(f"{name} labels must be >= 0, got {int(y.min())}")
    if name == "train" and z.shape[0] == 0:
        raise ConfigError("train: no training embeddings")


def _as_float(z: Tensor) -> Tensor:
    """float32, or float64 when given float64."""
    return z.to(torch.promote_types(z.dtype, torch.float32))


def _finite(*zs: Tensor) -> bool:
    return all(bool(torch.isfinite(z).all()) for z in zs)


def _plain_float(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast off: the metrics run from hooks that may sit inside a mixed-precision
    context, and similarities or the probe's loss in float16 would change the numbers."""
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except RuntimeError:  # a device type autocast does not know
        return contextlib.nullcontext()
