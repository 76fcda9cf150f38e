"""task=recommendation against independent truths: the terms by hand, AUC/NDCG@10/recall@10
by scikit-learn and a hand count, the MovieLens readers on files written here, and the two
synthetic experiments against the noise floor and the true scores' AUC."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from sklearn.metrics import ndcg_score, roc_auc_score

from objectives.data.ratings import RatingsDataModule, read_movielens, synthetic_ratings
from objectives.data.splits import split_indices
from objectives.losses.recommendation import bpr, embedding_l2
from objectives.metrics.recommendation import RankingContext, ranking_metrics
from objectives.run.assemble import assemble
from objectives.run.train import train
from tests.conftest import config_error_of, read_scalars

QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false"]  # fmt: skip
SIGMA = 0.5


# -- the terms ---------------------------------------------------------------------------------
def test_bpr_is_minus_log_sigmoid_of_the_score_gap() -> None:
    pos, neg = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([1.0, 0.0, 3.0])
    by_hand = [
        -math.log(1 / (1 + math.exp(-(p - n)))) for p, n in zip([2, 0, -1], [1, 0, 3], strict=True)
    ]
    assert bpr(pos, neg).item() == pytest.approx(sum(by_hand) / 3, rel=1e-6)
    # far apart: no overflow
    assert bpr(torch.tensor([0.0]), torch.tensor([1000.0])).item() == pytest.approx(1000.0)


def test_embedding_l2_is_the_per_rating_mean_of_the_touched_parameters() -> None:
    p = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    q = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    b_u, b_i = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.0])
    # rating 1: 1+4 + 9+0 + 0.25 + 4 = 18.25; rating 2: 0+1 + 1+1 + 1 + 0 = 4
    assert embedding_l2(p, q, b_u, b_i).item() == pytest.approx((18.25 + 4) / 2)
    # implicit: item vectors (B, 2, k) and biases (B, 2) of the observed and sampled items
    q2 = torch.stack([q, q], dim=1)
    assert embedding_l2(p, q2, b_u, torch.stack([b_i, b_i], 1)).item() == pytest.approx(
        ((5 + 18 + 0.25 + 8) + (1 + 4 + 1 + 0)) / 2
    )


# -- the ranking metrics -----------------------------------------------------------------------
def test_auc_ndcg_recall_match_sklearn_and_a_hand_count() -> None:
    generator = torch.Generator().manual_seed(3)
    num_users, num_items, k = 9, 40, 10
    scores = torch.randn(num_users, num_items, generator=generator)
    excluded = torch.rand(num_users, num_items, generator=generator) < 0.3
    positives = (torch.rand(num_users, num_items, generator=generator) < 0.15) & ~excluded
    positives[0] = False  # a user without held-out items is not ranked
    positives[1, :] = ~excluded[1]  # nor counted in the AUC without a negative
    users, items = positives.nonzero(as_tuple=True)
    ex_users, ex_items = excluded.nonzero(as_tuple=True)
    context = RankingContext(lambda u: scores[u], (ex_users, ex_items), num_items)
    got = ranking_metrics(users, items, context, k=k)

    aucs, ndcgs, recalls = [], [], []
    for u in range(num_users):
        if not positives[u].any():
            continue
        keep = (~excluded[u]).numpy()
        truth, s = positives[u].numpy()[keep].astype(int), scores[u].numpy()[keep]
        if 0 < truth.sum() < len(truth):
            aucs.append(roc_auc_score(truth, s))
        ndcgs.append(ndcg_score([truth], [s], k=k))
        top = np.argsort(-s)[:k]
        recalls.append(truth[top].sum() / truth.sum())  # the hand count
    assert got["auc"].item() == pytest.approx(np.mean(aucs), abs=1e-6)
    assert got["ndcg@10"].item() == pytest.approx(np.mean(ndcgs), abs=1e-6)
    assert got["recall@10"].item() == pytest.approx(np.mean(recalls), abs=1e-6)


def test_tied_scores_give_an_auc_of_one_half() -> None:
    scores = torch.zeros(2, 6)
    context = RankingContext(lambda u: scores[u], (torch.tensor([0]), torch.tensor([5])), 6)
    got = ranking_metrics(torch.tensor([0, 1]), torch.tensor([1, 2]), context)
    assert got["auc"].item() == pytest.approx(0.5)


# -- the readers -------------------------------------------------------------------------------
ROWS = [(196, 242, 3.0, 881250949), (186, 302, 3.5, 891717742), (22, 377, 1.0, 878887116)]


def write(path: Path, kind: str, rows=ROWS, header: str = "userId,movieId,rating,timestamp"):
    if kind == "tab":
        text = "".join(f"{u}\t{i}\t{r:g}\t{t}\n" for u, i, r, t in rows)
    elif kind == "dat":
        text = "".join(f"{u}::{i}::{r:g}::{t}\n" for u, i, r, t in rows)
    else:
        text = header + "\n" + "".join(f"{u},{i},{r:g},{t}\n" for u, i, r, t in rows)
    path.write_text(text)
    return path


@pytest.mark.parametrize(("name", "kind"), [("u.data", "tab"), ("ratings.csv", "csv"),
                                            ("ratings.dat", "dat")])  # fmt: skip
def test_each_movielens_format_reads_the_same_ratings(tmp_path: Path, name: str, kind: str):
    ratings = read_movielens(write(tmp_path / name, kind))
    assert ratings.users.tolist() == [196, 186, 22]
    assert ratings.items.tolist() == [242, 302, 377]
    assert ratings.ratings.tolist() == [3.0, 3.5, 1.0]
    assert ratings.lines.tolist() == ([2, 3, 4] if kind == "csv" else [1, 2, 3])


def test_a_csv_header_in_another_order_is_read_by_name(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("timestamp,rating,movieId,userId\n1,4.5,10,7\n")
    ratings = read_movielens(path)
    assert (ratings.users.tolist(), ratings.items.tolist(), ratings.ratings.tolist()) == (
        [7], [10], [4.5],
    )  # fmt: skip


def test_bad_ratings_files_are_one_line_errors_naming_file_and_line(tmp_path: Path) -> None:
    header = write(tmp_path / "ratings.csv", "csv", header="userId,movieId,timestamp,score")
    text = config_error_of(lambda: read_movielens(header))
    assert f"{header}, line 1: column 'rating' is not in the header" in text
    short = tmp_path / "u.data"
    short.write_text("1\t2\t3\t4\n5\t6\n")
    text = config_error_of(lambda: read_movielens(short))
    assert f"{short}, line 2: 2 field(s)" in text
    word = tmp_path / "ratings.dat"
    word.write_text("1::2::3::4\n1::3::good::5\n")
    text = config_error_of(lambda: read_movielens(word))
    assert f"{word}, line 2: rating 'good' is not a number" in text
    name = tmp_path / "named.data"
    name.write_text("1\t2\t3\t4\nbob\t3\t4\t5\n")
    assert "line 2: user id 'bob' is not an integer" in config_error_of(
        lambda: read_movielens(name)
    )
    missing = tmp_path / "nothing.csv"
    assert "no such file" in config_error_of(lambda: read_movielens(missing))


def many_rows(users: int = 30, items: int = 20, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    pairs = torch.randperm(users * items, generator=generator)[: users * items // 2]
    return [(int(p // items) * 10 + 1, int(p % items) * 7 + 3, float(1 + p % 5), 0) for p in pairs]


def test_ids_become_indices_of_the_training_split_and_cold_start_is_dropped_or_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [*many_rows(), (99999, 3, 4.0, 0)]  # a user with one rating
    path = write(tmp_path / "ratings.csv", "csv", rows)
    split = {"val": 0.1, "test": 0.1}
    # a seed that puts the lone rating outside the training split (cold start)
    seed = next(
        s for s in range(50) if len(rows) - 1 not in split_indices(len(rows), split, s)["train"]
    )
    module = RatingsDataModule(
        lambda: read_movielens(path), batch_size=16, split_seed=seed, name="movielens"
    )
    dims = module.dims
    assert dims["num_users"] == len(module.user_ids) == 30
    assert 99999 not in module.user_ids.tolist()
    for stage in ("train", "val", "test"):
        users, items, _ = module.split(stage)
        assert int(users.max()) < dims["num_users"] and int(items.max()) < dims["num_items"]
        # the indices name the raw ids the file had
        raw = set(
            zip(module.user_ids[users].tolist(), module.item_ids[items].tolist(), strict=True)
        )
        assert raw <= {(u, i) for u, i, _, _ in rows}
    assert sum(module.split_size(s) for s in ("train", "val", "test")) == len(rows) - 1
    assert "never names (first: user 99999)" in caplog.text
    refuse = RatingsDataModule(
        lambda: read_movielens(path), batch_size=16, split_seed=seed, cold_start="refuse"
    )
    text = config_error_of(lambda: refuse.dims)
    assert f"{path}, line {len(rows) + 1}: user 99999 of the" in text
    assert "data.cold_start=drop" in text


def test_implicit_negatives_are_items_the_user_never_interacted_with() -> None:
    module = RatingsDataModule(
        lambda: synthetic_ratings(num_users=50, num_items=30, feedback="implicit"),
        batch_size=64, feedback="implicit",
    )  # fmt: skip
    train_users, train_items, _ = module.split("train")
    known = set(zip(train_users.tolist(), train_items.tolist(), strict=True))
    batches = list(module.train_dataloader())
    for batch in batches:
        for u, j in zip(batch["users"].tolist(), batch["negatives"].tolist(), strict=True):
            assert (u, j) not in known
    again = list(module.train_dataloader())  # the same epoch draws the same negatives
    assert all(
        torch.equal(a["negatives"], b["negatives"]) for a, b in zip(batches, again, strict=True)
    )


# -- settings that do not fit ------------------------------------------------------------------
def test_a_loss_of_the_other_feedback_or_a_model_without_ids_is_one_line(compose_cfg) -> None:
    text = config_error_of(lambda: assemble(compose_cfg("experiment=synthetic_mf", "loss=bpr")))
    assert "loss 'bpr' reads pos_score, neg_score" in text and "data.feedback" in text
    text = config_error_of(lambda: assemble(compose_cfg("experiment=synthetic_mf", "model=mlp")))
    assert "model=matrix_factorization" in text
    regression = compose_cfg("data=synthetic_ratings", "model=matrix_factorization", *QUIET)
    text = config_error_of(lambda: train(regression))
    assert text == (
        "data 'synthetic_ratings' is made for task=recommendation, not "
        "task=regression; choose task=recommendation"
    )


# -- end to end --------------------------------------------------------------------------------
def test_synthetic_mf_reaches_the_noise_floor_within_15_percent(compose_cfg, tmp_path: Path):
    """Test RMSE ≥ σ in expectation (the noise is independent of all the model saw); with
    64 training ratings a user and 96 an item, a rank-5 fit adds ≈ σ²·(6/64 + 6/96) to the
    MSE: RMSE ≈ 1.08σ. Held to ≤ 1.15σ."""
    start = time.perf_counter()
    cfg = compose_cfg("experiment=synthetic_mf", *QUIET, fast=False)
    result = train(cfg)
    rmse = result["test/rmse"]
    assert 0.95 * SIGMA <= rmse <= 1.15 * SIGMA, rmse
    scalars = read_scalars(tmp_path / "tensorboard")
    for stage in ("train_epoch", "val", "test"):  # the L2 logged beside the MSE
        assert f"{stage}/term/mse" in scalars and f"{stage}/term/embedding_l2" in scalars
    assert time.perf_counter() - start < 120


def test_synthetic_bpr_auc_is_within_002_of_the_true_scores(compose_cfg, tmp_path: Path):
    cfg = compose_cfg("experiment=synthetic_bpr", *QUIET, fast=False)
    result = train(cfg)
    data = instantiate(cfg.data)
    users, items, _ = data.split("test")
    truth = data.true_scores
    context = RankingContext(lambda u: truth[u], data.known("test"), data.dims["num_items"])
    true_auc = ranking_metrics(users, items, context)["auc"].item()
    assert 0.85 < true_auc < 0.99  # the true scores do not rank perfectly: the noise
    assert abs(result["test/auc"] - true_auc) <= 0.02, (result["test/auc"], true_auc)
    assert 0 < result["test/ndcg@10"] <= 1 and 0 < result["test/recall@10"] <= 1


@pytest.mark.parametrize("feedback", ["explicit", "implicit"])
def test_a_movielens_file_trains_in_either_feedback(compose_cfg, tmp_path: Path, feedback: str):
    rows = [(u * 3 + 1, i * 5 + 2, float(1 + (u + i) % 5), 0) for u in range(40) for i in range(25)
            if (u * 7 + i * 3) % 4 == 0]  # fmt: skip
    path = write(tmp_path / "u.data", "tab", rows)
    loss = "[mse,embedding_l2]" if feedback == "explicit" else "[bpr,embedding_l2]"
    recipe = ["task=recommendation", "model=matrix_factorization", "data=movielens",
              "regularizer=[]", "data.batch_size=64", "torch_threads=1"]  # fmt: skip
    data = [f"data.path={path}", f"data.feedback={feedback}", f"loss={loss}"]
    cfg = compose_cfg(*recipe, *data, *QUIET)
    result = train(cfg)
    metric = "test/rmse" if feedback == "explicit" else "test/auc"
    assert math.isfinite(result[metric]) and math.isfinite(result["test/term/embedding_l2"])


def test_a_sweep_judges_implicit_feedback_by_auc_and_explicit_by_rmse(compose_cfg) -> None:
    """Sweep summaries compare jobs by the task's headline metric: RMSE means nothing
    without ratings, so implicit runs are compared by test AUC (higher is better)."""
    from objectives.run.sweeps.job_record import primary_metric
    from objectives.run.sweeps.summary import lower_is_better

    assert primary_metric(compose_cfg("experiment=synthetic_mf")) == "test/rmse"
    assert primary_metric(compose_cfg("experiment=synthetic_bpr")) == "test/auc"
    assert lower_is_better("test/rmse") and not lower_is_better("test/auc")
    assert not lower_is_better("test/recall_10") and not lower_is_better("test/precision_at_1")
