"""task=ranking: the losses against allRank's published test values, NDCG@k against
scikit-learn, MRR, the LETOR reader and its one-line errors, and a training end to end.

allRank (github.com/allegro/allRank, commit c884756) does not install on Python 3.11: its
test INPUTS and EXPECTED values are copied here, with the file each comes from; the losses
themselves are written in objectives/losses/ranking.py. allRank marks a padded item by a
relevance of −1 (PADDED_Y_VALUE); the mask here is `relevance != -1`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score

from objectives.data.ranking import RankingDataModule, letor_file, synthetic_queries
from objectives.losses.ranking import lambdaloss, listmle, listnet, ranknet
from objectives.metrics.ranking import MRRAtK, NDCGAtK
from objectives.run.train import train
from tests.conftest import config_error_of

PAD = -1.0  # allRank's PADDED_Y_VALUE
EPS = 1e-10  # allRank's DEFAULT_EPS


def one(values: list[float]) -> torch.Tensor:
    return torch.tensor([values])


def run(fn, y_pred: list[float], y_true: list[float], **kwargs) -> float:
    scores, relevance = one(y_pred), one(y_true)
    return float(fn(scores, relevance, relevance != PAD, **kwargs))


def softmax(x) -> np.ndarray:
    e = np.exp(np.asarray(x, dtype=np.float64) - np.max(x))
    return e / e.sum()


def bce(logits: list[float], targets: list[float]) -> float:
    """torch's BCEWithLogitsLoss, as allRank's tests compute their expected values."""
    return float(torch.nn.BCEWithLogitsLoss()(torch.tensor(logits), torch.tensor(targets)))


# -- allRank: tests/losses/test_listnet.py -------------------------------------------------------
def test_listnet_allrank_values() -> None:
    # test_listnet_simple (eps = 0)
    expected = -np.sum(softmax([1.0, 0.0]) * np.log(softmax([0.5, 0.2])))
    assert run(listnet, [0.5, 0.2], [1.0, 0.0], eps=0.0) == pytest.approx(expected)
    # test_listnet_stable_for_very_small_prediction
    result = run(listnet, [0.5, -1e30], [1.0, 0.0])
    expected = -np.sum(softmax([1.0, 0.0]) * np.log(softmax([0.5, -1e30]) + EPS))
    assert math.isfinite(result) and result == pytest.approx(expected)
    # test_listnet_ignores_padded_value
    result = run(listnet, [0.5, 0.2, 0.5], [1.0, 0.0, PAD])
    expected = -np.sum(softmax([1.0, 0.0]) * np.log(softmax([0.5, 0.2]) + EPS))
    assert math.isfinite(result) and result == pytest.approx(expected)


# -- allRank: tests/losses/test_listmle.py -------------------------------------------------------
def test_listmle_allrank_value() -> None:
    # test_listmle_ignores_padded_value: no two real items tie in relevance, so allRank's
    # random shuffle for ties cannot change the value; it is drawn anyway, so try several
    for seed in range(5):
        torch.manual_seed(seed)
        result = run(listmle, [0.5, 0.3, 0.5], [1.0, 0.0, PAD])
        assert result == pytest.approx(0.5981389284133911)


def test_listmle_ties_in_random_order() -> None:
    """With tied relevance the order within a tie is drawn; every draw is a valid value
    (the mean over orders is what it estimates)."""
    values = set()
    for seed in range(20):
        torch.manual_seed(seed)
        values.add(round(run(listmle, [0.1, 0.9], [1.0, 1.0]), 6))
    a, b = 0.1, 0.9
    both = math.log(math.exp(a) + math.exp(b))
    assert values == {round(both - a, 6), round(both - b, 6)}


# -- allRank: tests/losses/test_ranknet.py -------------------------------------------------------
@pytest.mark.parametrize(
    ("y_pred", "y_true", "logits", "targets"),
    [
        ([0.5, 0.2], [1.0, 0.0], [0.5 - 0.2], [1.0]),  # test_ranknet_onepair
        ([0.2, 0.5], [1.0, 0.0], [0.2 - 0.5], [1.0]),  # test_ranknet_onepair_minus
        ([0.5, 0.2, 0.1], [1.0, 0.0, 0.0], [0.3, 0.4], [1.0, 1.0]),  # test_ranknet_two_pairs
        ([0.2, 0.5], [0.0, 1.0], [0.3], [1.0]),  # test_ranknet_pair_reversed
        ([0.2, 0.5], [0.0, 2.0], [0.3], [1.0]),  # test_ranknet_pair_multirelevancy
        ([0.5, 0.2, 0.66], [1.0, 0.0, PAD], [0.5 - 0.2], [1.0]),  # test_ranknet_onepair_masked
    ],
)
def test_ranknet_allrank_values(y_pred, y_true, logits, targets) -> None:
    result = run(ranknet, y_pred, y_true)
    assert math.isfinite(result) and result == pytest.approx(bce(logits, targets))


# -- allRank: tests/losses/test_lambdaloss.py ----------------------------------------------------
@pytest.mark.parametrize(
    ("scheme", "log_base", "expected"),
    [
        ("ndcgLoss1", "binary", 2.9272110462),  # test_ndcgloss1_ignores_padded
        ("ndcgLoss2PP", "binary", 1.1244146823),  # test_ndcgloss2_ignores_padded
        ("rankNet", "natural", 1.1962778568),  # test_ranknet_ignores_padded
    ],
)
def test_lambdaloss_allrank_values(scheme: str, log_base: str, expected: float) -> None:
    plain = run(lambdaloss, [0.5, 0.3, 0.5], [0.5, 0.3, 0.5], scheme=scheme, log_base=log_base)
    padded = run(lambdaloss, [0.5, 0.3, 0.5, 1.0], [0.5, 0.3, 0.5, PAD], scheme=scheme,
                 log_base=log_base)  # fmt: skip
    assert math.isfinite(plain) and math.isfinite(padded)
    assert plain == pytest.approx(padded) and plain == pytest.approx(expected)


def test_lambdaloss_reductions() -> None:
    """`sum` (allRank's default) adds every query's pairs, `per_query` divides by the
    queries, `mean` by the pairs."""
    scores = torch.tensor([[0.5, 0.3, 0.5, 0.0], [0.1, 0.9, 0.4, 0.2]])
    relevance = torch.tensor([[0.5, 0.3, 0.5, PAD], [2.0, 0.0, 1.0, 0.0]])
    mask = relevance != PAD
    each = [float(lambdaloss(scores[i : i + 1], relevance[i : i + 1], mask[i : i + 1],
                             reduction="sum")) for i in range(2)]  # fmt: skip
    total = float(lambdaloss(scores, relevance, mask, reduction="sum"))
    assert total == pytest.approx(sum(each))
    assert float(lambdaloss(scores, relevance, mask)) == pytest.approx(sum(each) / 2)


@pytest.mark.parametrize("loss", [listnet, listmle, ranknet, lambdaloss])
def test_padded_items_get_no_gradient(loss) -> None:
    """Padded items change neither the value nor get a gradient; the others' are finite."""
    torch.manual_seed(0)
    scores = torch.randn(3, 6, requires_grad=True)
    relevance = torch.tensor([[2.0, 0, 1, 3, PAD, PAD], [1, 0, 0, 2, 1, PAD], [0, 1, 2, 0, 1, 4]])
    mask = relevance != PAD
    value = loss(scores, relevance, mask)
    value.backward()
    assert torch.isfinite(scores.grad).all()
    assert (scores.grad[~mask] == 0).all() and (scores.grad[mask] != 0).any()
    moved = scores.detach().clone()
    moved[~mask] = 100.0
    torch.manual_seed(0)
    again = loss(scores.detach(), relevance, mask)
    torch.manual_seed(0)
    assert float(loss(moved, relevance, mask)) == pytest.approx(float(again))


def test_no_pair_to_order_is_zero() -> None:
    scores = torch.tensor([[0.3, 0.1]], requires_grad=True)
    relevance = torch.tensor([[1.0, 1.0]])
    for loss in (ranknet, lambdaloss):
        value = loss(scores, relevance, relevance != PAD)
        assert float(value.detach()) == 0.0
        value.backward()


# -- metrics -------------------------------------------------------------------------------------
def random_lists(seed: int, queries: int = 40, items: int = 15):
    generator = torch.Generator().manual_seed(seed)
    relevance = torch.randint(0, 5, (queries, items), generator=generator).float()
    relevance[:3] = 0.0  # queries with no relevant item
    lengths = torch.randint(2, items + 1, (queries,), generator=generator)
    mask = torch.arange(items)[None, :] < lengths[:, None]
    scores = torch.randn(queries, items, generator=generator)
    scores[5, :4] = 0.25  # ties in the scores
    return scores, relevance.masked_fill(~mask, PAD), mask, lengths


@pytest.mark.parametrize("k", [1, 5, 10, None])
def test_ndcg_equals_sklearn(k: int | None) -> None:
    """NDCG@k with gains 2^rel − 1 is scikit-learn's ndcg_score given 2^rel − 1 as y_true
    (it uses linear gains), query by query (lists of different lengths), ties averaged; a
    query with no relevant item counts 0 in the mean, as scikit-learn counts it."""
    scores, relevance, mask, lengths = random_lists(0)
    metric = NDCGAtK(top_k=k)
    for start in range(0, len(scores), 16):  # batches of whole queries
        part = slice(start, start + 16)
        metric.update(scores[part], relevance[part], mask[part], torch.arange(40)[part])
    per_query = [
        ndcg_score([2.0 ** relevance[q, :n].numpy() - 1], [scores[q, :n].numpy()], k=k)
        for q, n in enumerate(lengths.tolist())
    ]
    assert per_query[0] == 0.0  # scikit-learn: all-zero y_true scores 0
    assert float(metric.compute()) == pytest.approx(float(np.mean(per_query)), abs=1e-6)


def test_ndcg_allrank_cases() -> None:
    """allRank's tests/losses/test_ndcg.py cases (its ndcg has the same gains)."""
    cases = [
        ([0.5, 0.2], [1.0, 0.0], None, 1.0),  # test_ndcg_simple_1
        ([0.5, 0.2], [0.0, 1.0], None, 1 / math.log2(3)),  # test_ndcg_simple_2
        ([0.5, 0.2], [0.0, 0.0], None, 0.0),  # test_ndcg_zero_when_no_relevant
        ([0.5, 0.2, 0.1], [1.0, 0.0, 1.0], 1, 1.0),  # test_ndcg_for_multiple_ats, @1
        ([0.5, 0.2, 0.1], [1.0, 0.0, 1.0], 2, 1.0 / (1.0 + 1 / math.log2(3))),  # @2
        ([0.5, 0.2, 1.0], [1.0, 0.0, PAD], None, 1.0),  # test_ndcg_with_padded_input
        ([0.5, 0.2, 1.0], [0.0, 1.0, PAD], None, 1 / math.log2(3)),  # ..._padded_input_2
    ]
    for y_pred, y_true, k, expected in cases:
        metric = NDCGAtK(top_k=k)
        relevance = one(y_true)
        metric.update(one(y_pred), relevance, relevance != PAD, torch.tensor([0]))
        assert float(metric.compute()) == pytest.approx(expected)


def test_mrr_allrank_cases() -> None:
    """allRank's tests/losses/test_mrr.py cases: first relevant item's 1/rank, 0 with none
    relevant (or none in the top k)."""
    cases = [
        ([[0.5, 0.2]], [[1.0, 0.0]], 10, 1.0),  # test_mrr_simple_1
        ([[0.5, 0.2]], [[1.0, 0.0]], None, 1.0),  # test_mrr_simple_no_ats
        ([[0.5, 0.2]], [[0.0, 1.0]], 10, 0.5),  # test_mrr_simple_2
        ([[0.2, 0.5], [0.5, 0.2]], [[0.0, 1.0], [0.0, 1.0]], 10, 0.75),  # multiple slates
        ([[0.5, 0.2]], [[0.0, 1.0]], 1, 0.0),  # test_mrr_multiple_ats, @1
        ([[0.5, 0.2]], [[0.0, 0.0]], 10, 0.0),  # test_mrr_zero_when_no_relevant
        ([[0.5, 0.2, 1.0]], [[1.0, 0.0, PAD]], 10, 1.0),  # test_mrr_with_padded_input
        ([[0.5, 0.2, 1.0]], [[0.0, 1.0, PAD]], 10, 0.5),  # test_mrr_with_padded_input_2
        ([[-3.0, -5.0]], [[1.0, 0.0]], None, 1.0),  # negative scores rank as well
    ]
    for y_pred, y_true, k, expected in cases:
        metric = MRRAtK(top_k=k)
        relevance = torch.tensor(y_true)
        metric.update(torch.tensor(y_pred), relevance, relevance != PAD, torch.arange(len(y_pred)))
        assert float(metric.compute()) == pytest.approx(expected)


# -- data ----------------------------------------------------------------------------------------
def test_synthetic_queries() -> None:
    lists = synthetic_queries(num_queries=50, list_size=12, min_list_size=4, num_features=5)
    assert lists.features.shape == (50, 12, 5) and lists.relevance.shape == (50, 12)
    real = lists.relevance != PAD
    lengths = real.sum(1)
    assert int(lengths.min()) >= 4 and int(lengths.max()) <= 12
    assert (real[:, :4]).all()  # real items first, padding after
    grades = lists.relevance[real]
    assert set(grades.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert 0.35 < float((grades == 0).float().mean()) < 0.65
    module = RankingDataModule(lambda: lists, batch_size=4, on_device=False)
    assert module.dims == {"in_features": 5, "out_features": 1, "list_size": 12}
    queries = torch.cat([module.split(s)[3] for s in ("train", "val", "test")])
    assert sorted(queries.tolist()) == list(range(50))  # every query in one split, whole


LETOR = """\
# a LETOR file: relevance, qid, sparse 1-based features, comments
2 qid:10 1:0.5 2:1.0 3:-1 # docid = a
0 qid:10 1:0.1 3:0.2
1 qid:7 2:3.0

1 qid:10 1:0.7 2:0.1 3:0.3 # docid = c
0 qid:7 1:1e-1 2:-2
"""


def test_letor_reader(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text(LETOR)
    lists = letor_file(path)
    assert lists.features.shape == (2, 3, 3)  # qid 10 (3 items) first, then qid 7 (2)
    assert lists.relevance.tolist() == [[2.0, 0.0, 1.0], [1.0, 0.0, PAD]]
    expected = [
        [[0.5, 1.0, -1], [0.1, 0, 0.2], [0.7, 0.1, 0.3]],
        [[0, 3.0, 0], [0.1, -2, 0], [0, 0, 0]],
    ]
    torch.testing.assert_close(lists.features, torch.tensor(expected))
    cut = letor_file(path, max_list_size=2)
    assert cut.relevance.tolist() == [[2.0, 0.0], [1.0, 0.0]]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("1 1:0.5 2:0.1", ["line 3", "no qid:<id>", "'1:0.5'"]),
        ("high qid:3 1:0.5", ["line 3", "relevance 'high' is not a number"]),
        ("1 qid:3 1:0.5 two:0.1", ["line 3", "feature 'two:0.1'"]),
        ("1 qid:3 1:0.5 2:", ["line 3", "feature '2:'"]),
        ("1 qid:3 1:0.5 0:0.3", ["line 3", "feature '0:0.3'", "index ≥ 1"]),
        ("1 qid:3 1:abc", ["line 3", "feature '1:abc'"]),
        ("1 qid:3 1:0.5 1:0.2", ["line 3", "feature index 1 appears twice"]),
    ],
)
def test_letor_bad_lines(tmp_path: Path, line: str, words: list[str]) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(f"2 qid:1 1:0.5\n0 qid:1 1:0.1\n{line}\n1 qid:3 1:0.2\n")
    message = config_error_of(lambda: letor_file(path))
    assert str(path) in message
    for word in words:
        assert word in message, message


def test_letor_missing_file_through_config(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg("task=ranking", "data=letor", f"data.path={tmp_path}/none.txt",
                      "model=mlp", "loss=listnet", "regularizer=[]")  # fmt: skip
    message = config_error_of(lambda: train(cfg))
    assert "none.txt: no such file" in message


def test_ranking_refuses_data_without_query_groups(compose_cfg) -> None:
    cfg = compose_cfg(
        "task=ranking", "data=synthetic", "model=mlp", "loss=listnet", "regularizer=[]"
    )
    assert "choose data=synthetic_ranking or data=letor" in config_error_of(lambda: train(cfg))


def test_letor_without_a_path(compose_cfg) -> None:
    cfg = compose_cfg("task=ranking", "data=letor", "model=mlp", "loss=listnet", "regularizer=[]")
    assert "set data.path" in config_error_of(lambda: train(cfg))


def test_letor_bad_line_through_config(compose_cfg, tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("2 qid:1 1:0.5\n1 1:0.5\n")
    cfg = compose_cfg("task=ranking", "data=letor", f"data.path={path}", "model=mlp",
                      "loss=listnet", "regularizer=[]")  # fmt: skip
    message = config_error_of(lambda: train(cfg))
    assert f"{path}, line 2: no qid" in message


@pytest.mark.parametrize("loss", ["listnet", "listmle", "ranknet", "lambdaloss"])
def test_every_loss_trains_on_a_letor_file(compose_cfg, tmp_path: Path, loss: str) -> None:
    """Each loss config composes with task=ranking and a LETOR file, and trains."""
    generator = np.random.default_rng(0)
    lines = []
    for qid in range(30):
        for _ in range(int(generator.integers(3, 9))):
            x = generator.normal(size=4)
            rel = int(np.clip(np.round(x[0] + x[1]), 0, 3))
            lines.append(
                f"{rel} qid:{qid} " + " ".join(f"{i + 1}:{v:.3f}" for i, v in enumerate(x))
            )
    path = tmp_path / "train.txt"
    path.write_text("\n".join(lines) + "\n")
    cfg = compose_cfg("task=ranking", "data=letor", f"data.path={path}", "model=mlp",
                      f"loss={loss}", "regularizer=[]", "data.batch_size=8",
                      "trainer.max_epochs=2", "torch_threads=1")  # fmt: skip
    metrics = train(cfg)
    for key in ("test/ndcg_5", "test/ndcg_10", "test/mrr", f"test/raw/{loss}"):
        assert math.isfinite(float(metrics[key])), key
    assert 0.0 <= float(metrics["test/ndcg_10"]) <= 1.0


# -- end to end ----------------------------------------------------------------------------------
def test_synthetic_ranking_experiment(compose_cfg) -> None:
    """experiment=synthetic_ranking reaches an NDCG@10 near the true scoring function's
    (0.931 on the test queries; a random order scores 0.44)."""
    cfg = compose_cfg("experiment=synthetic_ranking", "trainer.max_epochs=30")
    metrics = train(cfg)
    assert float(metrics["test/ndcg_10"]) > 0.88, metrics
    assert float(metrics["test/mrr"]) > 0.9, metrics
