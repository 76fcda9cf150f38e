"""Contrastive losses: NT-Xent and SupCon against closed forms and slow loops, the triplet
loss's mining against a brute force over every (anchor, positive, negative); gradcheck."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor, nn

from objectives.errors import ConfigError
from objectives.losses import TripletLoss, nt_xent, supcon
from objectives.objective import build_objective
from objectives.run.config import config_dir

F64 = torch.float64


def randn(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))


def orthonormal(n: int, d: int) -> Tensor:
    return torch.eye(d, dtype=F64)[:n]


# -- slow references: one anchor at a time, plain Python over the 2N views ------------------------
def cosine(u: Tensor, v: Tensor) -> float:
    return float(u @ v) / (float(u.norm()) * float(v.norm()))


def slow_supcon(z1: Tensor, z2: Tensor, labels: list[int], tau: float) -> float:
    """Khosla et al. eq. 2 (L_out) written out; labels all distinct gives NT-Xent."""
    views, view_labels = [*z1, *z2], labels + labels
    total = 0.0
    for i, anchor in enumerate(views):
        others = [k for k in range(len(views)) if k != i]
        log_denominator = math.log(sum(math.exp(cosine(anchor, views[k]) / tau) for k in others))
        positives = [k for k in others if view_labels[k] == view_labels[i]]
        total += -sum(cosine(anchor, views[p]) / tau - log_denominator for p in positives) / len(
            positives
        )
    return total / len(views)


def slow_nt_xent(z1: Tensor, z2: Tensor, tau: float) -> float:
    return slow_supcon(z1, z2, list(range(len(z1))), tau)


# -- NT-Xent -------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 5])
def test_nt_xent_of_identical_embeddings_is_log_of_the_candidates(n: int) -> None:
    """Every similarity is 1: each view's positive is one of 2N − 1 equal candidates."""
    z = torch.ones(n, 3, dtype=F64)
    assert nt_xent(z, z, temperature=0.2).item() == pytest.approx(math.log(2 * n - 1), rel=1e-12)


@pytest.mark.parametrize(("n", "tau"), [(2, 0.5), (4, 0.1), (4, 1.0), (3, 2.0)])
def test_nt_xent_of_aligned_orthonormal_views_matches_its_closed_form(n: int, tau: float) -> None:
    """z2 = z1 with orthonormal rows: each view's positive has cosine 1, the 2N − 2 views
    of the other images cosine 0, so every view's loss is
        −log(e^{1/τ} / (e^{1/τ} + (2N − 2)·e⁰)) = log(1 + (2N − 2)·e^{−1/τ})."""
    z = orthonormal(n, n + 2)
    expected = math.log1p((2 * n - 2) * math.exp(-1.0 / tau))
    assert nt_xent(z, z.clone(), temperature=tau).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_nt_xent_matches_a_slow_loop_over_the_anchors(tau: float) -> None:
    z1, z2 = randn(6, 4, seed=1), randn(6, 4, seed=2)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(slow_nt_xent(z1, z2, tau), rel=1e-10)


def test_nt_xent_is_symmetric_in_the_two_views() -> None:
    z1, z2 = randn(7, 5, seed=3), randn(7, 5, seed=4)
    assert nt_xent(z1, z2).item() == pytest.approx(nt_xent(z2, z1).item(), rel=1e-12)


def test_nt_xent_reads_only_directions_and_temperature_sets_the_sharpness() -> None:
    z1, z2 = randn(5, 4, seed=5), randn(5, 4, seed=6)
    # cosine similarity: rescaling the embeddings (per row) changes nothing
    scale = torch.arange(1.0, 6.0, dtype=F64)[:, None]
    assert nt_xent(3.0 * z1, z2 * scale).item() == pytest.approx(nt_xent(z1, z2).item(), rel=1e-12)
    # τ → ∞: a uniform softmax over the 2N − 1 candidates, whatever the embedding
    assert nt_xent(z1, z2, 1e6).item() == pytest.approx(math.log(9), rel=1e-5)
    # views already matched (z2 = z1, orthonormal): the loss falls to 0 as τ → 0, and rises
    # with τ, since a larger τ blurs the positive into the negatives
    z = orthonormal(5, 6)
    losses = [nt_xent(z, z, tau).item() for tau in (0.01, 0.1, 0.5, 1.0, 10.0)]
    assert losses[0] < 1e-40
    assert losses == sorted(losses)


def test_nt_xent_in_half_precision_is_computed_in_float32() -> None:
    """exp(1/τ) of float16 logits would overflow for τ = 0.05; the loss lifts them first."""
    z1, z2 = randn(4, 3, seed=7), randn(4, 3, seed=8)
    value = nt_xent(z1.half(), z2.half(), temperature=0.05)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert value.item() == pytest.approx(nt_xent(z1, z2, 0.05).item(), rel=1e-2)


def test_nt_xent_gradcheck() -> None:
    z1 = randn(4, 3, seed=9).requires_grad_()
    z2 = randn(4, 3, seed=10).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.3), (z1, z2))


@pytest.mark.parametrize("tau", [0.0, -0.5, float("inf"), float("nan")])
def test_a_temperature_that_is_not_positive_is_refused(tau: float) -> None:
    z = randn(3, 2)
    with pytest.raises(ConfigError, match=r"loss\.nt_xent\.fn\.temperature must be a number > 0"):
        nt_xent(z, z, tau)
    with pytest.raises(ConfigError, match=r"loss\.supcon\.fn\.temperature must be a number > 0"):
        supcon(z, z, torch.arange(3), tau)


# -- SupCon --------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_supcon_with_distinct_labels_is_nt_xent(tau: float) -> None:
    z1, z2 = randn(6, 4, seed=11), randn(6, 4, seed=12)
    labels = torch.tensor([5, 0, 3, 9, 1, 2])
    assert supcon(z1, z2, labels, tau).item() == pytest.approx(nt_xent(z1, z2, tau).item(), 1e-12)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_supcon_two_images_of_one_label_by_hand(tau: float) -> None:
    """Views e1, e2, e1, e2, all one label. Anchor e1: the other e1 at cosine 1, the two e2
    at cosine 0, all three positives; denominator e^{1/τ} + 2, so
        ℓ = −(1/3)·[(1/τ + 0 + 0) − 3·log(e^{1/τ} + 2)] = log(e^{1/τ} + 2) − 1/(3τ),
    the same for every anchor by symmetry."""
    z = orthonormal(2, 2)
    expected = math.log(math.exp(1 / tau) + 2) - 1 / (3 * tau)
    value = supcon(z, z.clone(), torch.tensor([7, 7]), tau)
    assert value.item() == pytest.approx(expected, rel=1e-12)


def test_supcon_labels_0_0_1_by_hand() -> None:
    """Views e1, e2, e3, e1, e2, e3 with labels 0, 0, 1, 0, 0, 1; every denominator is
    e^{1/τ} + 4 =: Z. A label-0 view has 3 positives (its twin at cosine 1, two at 0):
    log Z − 1/(3τ); a label-1 view has only its twin: log Z − 1/τ. Mean over 4 + 2 views:
        log Z − (4/(3τ) + 2/τ)/6 = log Z − 5/(9τ)."""
    tau = 0.25
    z = orthonormal(3, 3)
    expected = math.log(math.exp(1 / tau) + 4) - 5 / (9 * tau)
    assert supcon(z, z, torch.tensor([0, 0, 1]), tau).item() == pytest.approx(expected, rel=1e-12)


def test_supcon_matches_a_slow_loop_over_the_anchors() -> None:
    z1, z2 = randn(8, 4, seed=13), randn(8, 4, seed=14)
    labels = [0, 1, 0, 2, 1, 1, 3, 0]
    value = supcon(z1, z2, torch.tensor(labels), 0.2).item()
    assert value == pytest.approx(slow_supcon(z1, z2, labels, 0.2), rel=1e-10)


def test_supcon_gradcheck() -> None:
    z1 = randn(5, 3, seed=15).requires_grad_()
    z2 = randn(5, 3, seed=16).requires_grad_()
    labels = torch.tensor([0, 1, 0, 1, 2])
    assert torch.autograd.gradcheck(lambda a, b: supcon(a, b, labels, 0.2), (z1, z2))


# -- triplet: mining against a brute force ---------------------------------------------------------
def distance(u: Tensor, v: Tensor, kind: str) -> float:
    return 1.0 - cosine(u, v) if kind == "cosine" else float((u - v).norm())


def brute_force(views: Tensor, labels: list[int], mining: str, margin: float, kind: str):
    """Every (a, p, n) the mining should pick, from the definitions, one loop at a time; and
    for semi_hard how many (a, p) pairs found a negative in the band."""
    m = len(views)
    d = [[distance(views[i], views[j], kind) for j in range(m)] for i in range(m)]
    triplets, in_band = [], 0
    for a in range(m):
        positives = [p for p in range(m) if p != a and labels[p] == labels[a]]
        negatives = [n for n in range(m) if labels[n] != labels[a]]
        if not positives or not negatives:
            continue
        if mining == "all":
            triplets += [(a, p, n) for p, n in itertools.product(positives, negatives)]
        elif mining == "hard":
            farthest = max(positives, key=lambda p: d[a][p])
            triplets.append((a, farthest, min(negatives, key=lambda n: d[a][n])))
        else:
            for p in positives:
                band = [n for n in negatives if d[a][p] < d[a][n] < d[a][p] + margin]
                in_band += bool(band)
                triplets.append((a, p, min(band or negatives, key=lambda n: d[a][n])))
    return sorted(triplets), in_band


def torch_reference(kind: str, margin: float) -> nn.Module:
    if kind == "cosine":
        return nn.TripletMarginWithDistanceLoss(
            distance_function=lambda a, b: 1 - F.cosine_similarity(a, b), margin=margin
        )
    return nn.TripletMarginLoss(margin=margin)


@pytest.mark.parametrize("kind", ["euclidean", "cosine"])
@pytest.mark.parametrize("mining", ["semi_hard", "hard", "all"])
def test_triplet_mining_matches_a_brute_force_and_the_value_is_torchs(
    mining: str, kind: str
) -> None:
    z1, z2 = randn(6, 3, seed=17), randn(6, 3, seed=18)
    labels = [0, 1, 2, 0, 1, 1]
    margin = 0.5 if kind == "euclidean" else 0.3
    loss = TripletLoss(margin=margin, mining=mining, distance=kind)
    views, view_labels = torch.cat([z1, z2]), torch.tensor(labels + labels)

    a, p, n = loss.mine(views, view_labels)
    expected, in_band = brute_force(views, labels + labels, mining, margin, kind)
    assert sorted(zip(a.tolist(), p.tolist(), n.tolist(), strict=True)) == expected
    if mining == "semi_hard":  # both the band and the fall-back to the hardest were exercised
        assert 0 < in_band < len(expected)

    rows = [views[[t[i] for t in expected]] for i in range(3)]
    reference = torch_reference(kind, margin)(*rows).item()
    assert reference > 0
    value = loss(z1, z2, torch.tensor(labels)).item()
    # `all` measures euclidean distances without torch's 1e-6 offset (see TripletLoss)
    assert value == pytest.approx(reference, rel=1e-12 if mining != "all" else 1e-5)


@pytest.mark.parametrize("mining", ["semi_hard", "hard", "all"])
def test_triplet_of_clusters_farther_apart_than_the_margin_is_zero(mining: str) -> None:
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=F64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    z1 = centres[labels] + 0.1 * randn(6, 2, seed=19)
    z2 = centres[labels] + 0.1 * randn(6, 2, seed=20)
    z1.requires_grad_()
    value = TripletLoss(margin=1.0, mining=mining)(z1, z2, labels)
    assert value.item() == 0.0
    value.backward()
    assert torch.count_nonzero(z1.grad) == 0


def test_triplet_without_negatives_is_zero_and_still_backpropagates() -> None:
    z1, z2 = randn(4, 3, seed=21).requires_grad_(), randn(4, 3, seed=22)
    for mining in ("semi_hard", "hard", "all"):
        value = TripletLoss(mining=mining)(z1, z2, torch.zeros(4, dtype=torch.long))
        assert value.item() == 0.0 and value.requires_grad
        value.backward()
        assert torch.equal(z1.grad, torch.zeros_like(z1))


@pytest.mark.parametrize("kind", ["euclidean", "cosine"])
@pytest.mark.parametrize("mining", ["semi_hard", "hard", "all"])
def test_triplet_gradcheck(mining: str, kind: str) -> None:
    """Random float64 rows: no two candidate distances within gradcheck's step, so the
    mined triplets stay the same while it differentiates."""
    z1 = randn(4, 3, seed=23).requires_grad_()
    z2 = randn(4, 3, seed=24).requires_grad_()
    labels = torch.tensor([0, 1, 0, 2])
    loss = TripletLoss(margin=0.5, mining=mining, distance=kind)
    assert loss(z1, z2, labels).item() > 0
    assert torch.autograd.gradcheck(lambda a, b: loss(a, b, labels), (z1, z2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": 0.0}, r"loss\.triplet\.fn\.margin must be a number > 0, got 0\.0"),
        ({"margin": -1}, r"loss\.triplet\.fn\.margin must be a number > 0, got -1"),
        (
            {"mining": "easy"},
            r"loss\.triplet\.fn\.mining must be one of semi_hard\|hard\|all, got 'easy'",
        ),
        ({"distance": "l1"}, r"loss\.triplet\.fn\.distance must be euclidean or cosine, got 'l1'"),
    ],
)
def test_bad_triplet_settings_are_refused_in_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        TripletLoss(**kwargs)
    assert "\n" not in str(err.value)


# -- the config files ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["nt_xent", "supcon", "triplet"])
def test_each_config_builds_a_term_that_reads_the_contrastive_outputs(name: str) -> None:
    node = OmegaConf.load(config_dir() / "loss" / f"{name}.yaml")
    (term,) = build_objective({name: node}).terms
    z1, z2, labels = randn(4, 3, seed=25), randn(4, 3, seed=26), torch.tensor([0, 1, 0, 1])
    outputs = {"z1": z1, "z2": z2, "labels": labels}
    expected = {
        "nt_xent": lambda: nt_xent(z1, z2, 0.5),
        "supcon": lambda: supcon(z1, z2, labels, 0.1),
        "triplet": lambda: TripletLoss(0.2, "semi_hard", "euclidean")(z1, z2, labels),
    }[name]()
    assert term.raw(outputs).item() == pytest.approx(expected.item(), rel=1e-12)
