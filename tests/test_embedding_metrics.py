"""Embedding metrics: k-NN accuracy against scikit-learn and by hand, linear probe on blobs
and digits, determinism, grad-disabled callers, untouched global RNG."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from objectives.errors import ConfigError
from objectives.metrics.embedding import knn_accuracy, knn_predict, linear_probe_accuracy


def _clusters(
    n_train: int, n_query: int, dim: int, classes: int, seed: int, spread: float = 1.0
) -> tuple[torch.Tensor, ...]:
    """Noisy class clusters (overlapping when `spread` is large), float32 and int64."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g)
    y = torch.randint(0, classes, (n_train + n_query,), generator=g)
    z = centres[y] + spread * torch.randn(n_train + n_query, dim, generator=g)
    return z[:n_train], y[:n_train], z[n_train:], y[n_train:]


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, ...]:
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return (
        torch.tensor(x_tr, dtype=torch.float32),
        torch.tensor(y_tr),
        torch.tensor(x_te, dtype=torch.float32),
        torch.tensor(y_te),
    )


# --- k-NN ---------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 5, 20])
def test_knn_matches_sklearn_brute_cosine(k: int) -> None:
    train_z, train_y, query_z, query_y = _clusters(400, 150, 16, 5, seed=k, spread=1.5)
    sims = torch.nn.functional.normalize(query_z.double(), dim=1) @ (
        torch.nn.functional.normalize(train_z.double(), dim=1).T
    )
    ranked = sims.sort(dim=1, descending=True).values
    # The fixture's k-th and (k+1)-th neighbours are well apart (for the odd k used below
    # too), so float32 vs float64 cannot reorder them: same neighbour sets as scikit-learn.
    k_odd = k + 1 - k % 2
    for n in {k, k_odd}:
        assert (ranked[:, n - 1] - ranked[:, n]).min() > 1e-6

    sk = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
    sk.fit(train_z.numpy(), train_y.numpy())
    neigh = torch.from_numpy(sk.kneighbors(query_z.numpy(), return_distance=False))
    ours = knn_predict(train_z, train_y, query_z, k=k)

    # Where the vote is not tied, scikit-learn's prediction is the majority: so is ours.
    counts = torch.nn.functional.one_hot(train_y[neigh], 5).sum(1)
    top2 = counts.topk(2, dim=1).values
    untied = (top2[:, 0] > top2[:, 1]) if k > 1 else torch.ones(len(neigh), dtype=torch.bool)
    assert untied.sum() > 100
    sk_pred = torch.from_numpy(sk.predict(query_z.numpy()))
    assert torch.equal(ours[untied], sk_pred[untied])
    # Tied votes go to the class of the nearest tied neighbour (scikit-learn: lowest label).
    for i in torch.nonzero(~untied).flatten().tolist():
        tied = set(torch.nonzero(counts[i] == counts[i].max()).flatten().tolist())
        first = next(int(train_y[j]) for j in neigh[i] if int(train_y[j]) in tied)
        assert int(ours[i]) == first

    if k > 1:
        # Two classes and odd k: no ties, so the accuracies are equal outright.
        train_y2, query_y2 = train_y % 2, query_y % 2
        sk.fit(train_z.numpy(), train_y2.numpy())
        sk.set_params(n_neighbors=k_odd)
        expected = sk.score(query_z.numpy(), query_y2.numpy())
        got = knn_accuracy(train_z, train_y2, query_z, query_y2, k=k_odd)
        assert got.item() == pytest.approx(expected, abs=1e-6)
    else:
        expected = sk.score(query_z.numpy(), query_y.numpy())
        assert knn_accuracy(train_z, train_y, query_z, query_y, k=1).item() == pytest.approx(
            expected, abs=1e-6
        )


def _angles(*degrees: float) -> torch.Tensor:
    rad = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([rad.cos(), rad.sin()], dim=1).float()


def test_knn_by_hand() -> None:
    # Training points on the unit circle (norms must not matter: scale one of them).
    train_z = _angles(0, 10, 20, 180, 190) * torch.tensor([[3.0], [1.0], [1.0], [1.0], [0.5]])
    train_y = torch.tensor([2, 1, 0, 0, 1])
    query_z = _angles(2, 183, 14)
    # k=1: the nearest point's label.
    assert knn_predict(train_z, train_y, query_z, k=1).tolist() == [2, 0, 1]
    # k=3 from 2°: 0°(2), 10°(1), 20°(0), one vote each: the nearest (class 2) wins.
    # From 183°: 180°(0), 190°(1), 20°(0): class 0 has two votes.
    # From 14°: 10°(1), 20°(0), 0°(2): a three-way tie, the nearest (class 1) wins.
    assert knn_predict(train_z, train_y, query_z, k=3).tolist() == [2, 0, 1]
    acc = knn_accuracy(train_z, train_y, query_z, torch.tensor([2, 0, 0]), k=3)
    assert acc.dtype == torch.float32 and acc.dim() == 0
    assert acc.item() == pytest.approx(2 / 3)
    # k=5 from 2°: class 0 has two votes (20°, 180°), class 1 two (10°, 190°), class 2 one:
    # 0 and 1 tie, and 1's nearest (10°) is nearer than 0's (20°).
    assert knn_predict(train_z, train_y, query_z[:1], k=5).tolist() == [1]


def test_knn_similarity_weighted_vote() -> None:
    train_z = _angles(0, 60, 70)
    train_y = torch.tensor([1, 0, 0])
    query_z = _angles(0)
    # Majority vote: class 0 (two votes). exp(s/0.05): the 0° neighbour outweighs both.
    assert knn_predict(train_z, train_y, query_z, k=3).tolist() == [0]
    assert knn_predict(train_z, train_y, query_z, k=3, temperature=0.05).tolist() == [1]
    # A loose temperature approaches the plain vote; a tiny one never underflows to a tie.
    assert knn_predict(train_z, train_y, query_z, k=3, temperature=100.0).tolist() == [0]
    assert knn_predict(train_z, train_y, query_z, k=3, temperature=1e-6).tolist() == [1]


@pytest.mark.parametrize("temperature", [None, 0.1])
def test_knn_chunked_equals_unchunked(temperature: float | None) -> None:
    train_z, train_y, query_z, query_y = _clusters(500, 333, 32, 7, seed=3, spread=2.0)
    whole = knn_predict(train_z, train_y, query_z, k=10, temperature=temperature, chunk=10_000)
    for chunk in (1, 7, 64, 333):
        part = knn_predict(train_z, train_y, query_z, k=10, temperature=temperature, chunk=chunk)
        assert torch.equal(part, whole)
    accs = {
        knn_accuracy(train_z, train_y, query_z, query_y, k=10, chunk=c).item() for c in (5, 4096)
    }
    assert len(accs) == 1


def test_knn_votes_are_built_in_bounded_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many classes: the (queries, k, classes) vote tensor is split, same predictions."""
    import objectives.metrics.embedding as embedding

    train_z, train_y, query_z, _ = _clusters(300, 50, 8, 40, seed=5, spread=0.5)
    whole = knn_predict(train_z, train_y, query_z, k=7)
    monkeypatch.setattr(embedding, "_VOTE_BUDGET", 7 * 40 * 3)  # three queries at a time
    assert torch.equal(knn_predict(train_z, train_y, query_z, k=7), whole)


def test_knn_dtypes_grad_and_nonfinite() -> None:
    train_z, train_y, query_z, query_y = _clusters(100, 40, 8, 3, seed=1)
    expected = knn_accuracy(train_z, train_y, query_z, query_y, k=5)
    double = knn_accuracy(train_z.double(), train_y.int(), query_z.double(), query_y, k=5)
    assert double.item() == expected.item()
    with torch.inference_mode():
        assert knn_accuracy(train_z, train_y, query_z, query_y, k=5).item() == expected.item()
    leaf = train_z.clone().requires_grad_()
    assert not knn_accuracy(leaf, train_y, query_z, query_y, k=5).requires_grad
    broken = query_z.clone()
    broken[3, 1] = float("nan")
    assert math.isnan(knn_accuracy(train_z, train_y, broken, query_y, k=5).item())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be an integer >= 1"),
        ({"k": 101}, "k=101 is larger than the training set"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"chunk": 0}, "chunk must be an integer >= 1"),
        ({"train_y": torch.zeros(99, dtype=torch.long)}, "100 embeddings but labels"),
        ({"query_y": torch.zeros(41, dtype=torch.long)}, "40 embeddings but labels"),
        ({"query_z": torch.zeros(40, 9)}, "must be (N, 8)"),
        ({"train_y": torch.zeros(100)}, "labels must be integer"),
        ({"train_y": torch.full((100,), -1)}, "labels must be >= 0"),
    ],
)
def test_knn_rejects_bad_inputs(kwargs: dict, message: str) -> None:
    train_z, train_y, query_z, query_y = _clusters(100, 40, 8, 3, seed=1)
    args = {"train_z": train_z, "train_y": train_y, "query_z": query_z, "query_y": query_y}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        knn_accuracy(**args)
    assert "\n" not in str(e.value)


# --- linear probe --------------------------------------------------------------------------


def test_probe_separates_blobs() -> None:
    g = torch.Generator().manual_seed(0)
    centres = 10 * torch.randn(3, 20, generator=g)
    y = torch.arange(450) % 3
    z = centres[y] + torch.randn(450, 20, generator=g)
    acc = linear_probe_accuracy(z[:300], y[:300], z[300:], y[300:])
    assert acc.dim() == 0 and acc.dtype == torch.float32
    assert acc.item() == 1.0


def test_probe_on_digits_matches_sklearn(digits: tuple[torch.Tensor, ...]) -> None:
    x_tr, y_tr, x_te, y_te = digits
    sk = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    expected = sk.fit(x_tr.numpy(), y_tr.numpy()).score(x_te.numpy(), y_te.numpy())
    start = time.perf_counter()
    acc = linear_probe_accuracy(x_tr, y_tr, x_te, y_te).item()
    seconds = time.perf_counter() - start
    print(
        f"\nlinear probe, digits {tuple(x_tr.shape)}: {acc:.4f} in {seconds:.3f}s "
        f"(sklearn {expected:.4f})"
    )
    assert abs(acc - expected) <= 0.02
    assert acc > 0.94
    # With scikit-learn's own penalty (weight_decay = 1/(C·N)) the optimum is the same one.
    same = linear_probe_accuracy(x_tr, y_tr, x_te, y_te, weight_decay=1 / len(x_tr)).item()
    assert abs(same - expected) <= 1 / len(x_te) + 1e-6


def test_probe_is_deterministic_and_leaves_the_global_rng(
    digits: tuple[torch.Tensor, ...],
) -> None:
    x_tr, y_tr, x_te, y_te = digits
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = linear_probe_accuracy(x_tr, y_tr, x_te, y_te, epochs=20, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    second = linear_probe_accuracy(x_tr, y_tr, x_te, y_te, epochs=20, seed=7)
    assert first.item() == second.item()
    # Inputs are not modified in place.
    assert torch.equal(x_tr, digits[0]) and x_tr.mean().item() > 1.0


def test_probe_runs_where_grad_is_disabled(digits: tuple[torch.Tensor, ...]) -> None:
    x_tr, y_tr, x_te, y_te = digits
    expected = linear_probe_accuracy(x_tr, y_tr, x_te, y_te, epochs=30).item()
    with torch.no_grad():
        assert linear_probe_accuracy(x_tr, y_tr, x_te, y_te, epochs=30).item() == expected
    with torch.inference_mode():
        # Inference tensors as inputs (what a test hook would have collected).
        made_here = [t.clone() for t in digits]
        assert made_here[0].is_inference()
        assert linear_probe_accuracy(*made_here, epochs=30).item() == expected
    assert torch.is_grad_enabled()
    # Embeddings that still carry a graph: detached, no gradient flows back.
    leaf = x_tr.clone().requires_grad_()
    acc = linear_probe_accuracy(leaf, y_tr, x_te, y_te, epochs=30)
    assert not acc.requires_grad and leaf.grad is None


def test_probe_num_classes_constant_features_and_nonfinite() -> None:
    train_z, train_y, test_z, test_y = _clusters(200, 100, 6, 3, seed=2, spread=0.3)
    plain = linear_probe_accuracy(train_z, train_y, test_z, test_y, num_classes=5)
    assert plain.item() > 0.9
    # Constant features are centred and left unscaled: a small shift at test time stays small.
    constant = torch.cat([train_z, torch.full((200, 1), 1 / 3), torch.zeros(200, 1)], dim=1)
    constant_test = torch.cat([test_z, torch.full((100, 1), 1 / 3 + 0.01), torch.zeros(100, 1)], 1)
    acc = linear_probe_accuracy(constant, train_y, constant_test, test_y, num_classes=5)
    assert acc.item() == plain.item()
    collapsed = linear_probe_accuracy(torch.ones(200, 6), train_y, torch.ones(100, 6), test_y)
    assert 0.0 <= collapsed.item() <= 1.0  # predicts one class, does not fail
    with pytest.raises(ConfigError, match="label 2 found but num_classes=2"):
        linear_probe_accuracy(train_z, train_y, test_z, test_y, num_classes=2)
    with pytest.raises(ConfigError, match="test embeddings have 5 features"):
        linear_probe_accuracy(train_z, train_y, test_z[:, :5], test_y)
    with pytest.raises(ConfigError, match="100 embeddings but labels"):
        linear_probe_accuracy(train_z, train_y, test_z, test_y[:-1])
    inf = train_z.clone()
    inf[0, 0] = float("inf")
    assert math.isnan(linear_probe_accuracy(inf, train_y, test_z, test_y).item())


def test_probe_timing_mnist_sized() -> None:
    """Reported, not asserted tightly: 60,000 × 128 embeddings, 10 classes."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(128, 10, generator=g)
    z = torch.randn(70_000, 128, generator=g)
    y = (z @ w + 2 * torch.randn(70_000, 10, generator=g)).argmax(1)
    start = time.perf_counter()
    acc = linear_probe_accuracy(z[:60_000], y[:60_000], z[60_000:], y[60_000:]).item()
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    knn = knn_accuracy(z[:60_000], y[:60_000], z[60_000:62_000], y[60_000:62_000]).item()
    knn_seconds = time.perf_counter() - start
    print(
        f"\nlinear probe, random {tuple(z[:60_000].shape)}: {acc:.4f} in {seconds:.2f}s; "
        f"kNN (k=20) of 2,000 queries: {knn:.4f} in {knn_seconds:.2f}s"
    )
    assert acc > 0.8  # the noisy labels' Bayes rate is about 0.8-0.9
    assert seconds < 120
    assert np.isfinite(knn)
