"""Weighting policies against independent truths: PCGrad's projection by hand, VQGAN's
ratio by direct autograd, uncertainty weighting's closed-form optimum on a toy whose noise
is known, scale invariance, and resume reproducing an uninterrupted run."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from torch import nn

from objectives.errors import ConfigError
from objectives.objective import LossTerm, Objective, build_objective, build_player_objectives
from objectives.objective.weighting import GradRatio, PCGrad, Uncertainty, project_conflicts
from objectives.objective.weights import LinearRamp
from objectives.run.checkpoints import load_checkpoint
from objectives.run.cli import register_resolvers
from objectives.run.config import config_dir
from objectives.run.train import train
from tests.conftest import NO_PROGRESS_BAR, load_script, read_scalars

QUIET = [*NO_PROGRESS_BAR, "trainer.enable_model_summary=false"]


def two_outputs(scale_b: float = 1.0, dtype=torch.float32) -> list[LossTerm]:
    """mse_a on column 0, mse_b (times `scale_b`) on column 1."""

    def scaled_mse(pred, target):
        return scale_b * nn.functional.mse_loss(pred, target)

    return [
        LossTerm("mse_a", nn.MSELoss(), columns=0, symbol="mse_a(ŷ, y)"),
        LossTerm("mse_b", scaled_mse, columns=[1], symbol="mse_b(ŷ, y)"),
    ]


def toy_batch(dtype=torch.float32, n: int = 64):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator, dtype=dtype)
    y = torch.stack([x[:, 0] - x[:, 1], 3 * x[:, 2]], dim=1)
    return x, y + 0.3 * torch.randn(n, 2, generator=generator, dtype=dtype)


def network(dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)).to(dtype)


# -- PCGrad ---------------------------------------------------------------------------------
def test_pcgrad_projects_a_hand_computed_conflict():
    # g1 = (1, 0), g2 = (−1, 1): g1·g2 = −1 < 0, so
    # g1' = g1 − (−1/‖g2‖²)·g2 = (1, 0) + ½(−1, 1) = (½, ½)
    # g2' = g2 − (−1/‖g1‖²)·g1 = (−1, 1) + (1, 0) = (0, 1); the step: (½, 3/2)
    grads = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    expected = torch.tensor([0.5, 1.5], dtype=torch.float64)
    for orders in ([[0, 1], [1, 0]], [[1, 0], [0, 1]]):
        assert (project_conflicts(grads, orders) - expected).abs().max() < 1e-12
    # no conflict (g1·g2 ≥ 0): the plain sum; a zero gradient removes nothing
    agreeing = torch.tensor([[1.0, 2.0], [3.0, 0.5]], dtype=torch.float64)
    assert torch.equal(project_conflicts(agreeing, [[1], [0]]), agreeing.sum(0))
    with_zero = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    assert torch.equal(project_conflicts(with_zero, [[1], [0]]), with_zero.sum(0))


def test_pcgrad_steps_along_the_projected_sum_and_logs_the_plain_objective():
    net = network(torch.float64)
    x, y = toy_batch(torch.float64)
    y[:, 0], y[:, 1] = 5.0, -5.0  # heads pulled apart: their gradients disagree
    plain = Objective(two_outputs()).bind(net)
    policy = Objective(two_outputs(), weighting=PCGrad()).bind(net)
    params = list(net.parameters())
    reference = plain({"pred": net(x), "target": y})
    g = [
        torch.cat([t.reshape(-1) for t in torch.autograd.grad(reference.raw[n], params,
                                                               retain_graph=True)])
        for n in ("mse_a", "mse_b")
    ]  # fmt: skip
    dot = g[0] @ g[1]
    assert dot < 0, "the toy must have conflicting gradients"
    expected = g[0] - dot / (g[1] @ g[1]) * g[1] + g[1] - dot / (g[0] @ g[0]) * g[0]
    value = policy({"pred": net(x), "target": y}, step=3)
    assert value.total.item() == pytest.approx(reference.total.item(), rel=1e-14)
    value.total.backward()
    got = torch.cat([p.grad.reshape(-1) for p in params])
    assert (got - expected).abs().max() < 1e-12
    assert str(policy) == "J(θ) = 1·mse_a(ŷ, y) + 1·mse_b(ŷ, y) [pcgrad]"


def test_pcgrad_order_is_seeded_by_the_step():
    policy = PCGrad(seed=3)
    assert policy.orders(4, 10) == PCGrad(seed=3).orders(4, 10)
    draws = {str(policy.orders(4, step)) for step in range(20)}
    assert len(draws) > 1


# -- grad_ratio -----------------------------------------------------------------------------
def test_grad_ratio_is_vqgans_rule_at_the_last_layer():
    net = network()
    x, y = toy_batch()
    objective = Objective(two_outputs(), weighting=GradRatio("mse_b", "mse_a")).bind(net)
    value = objective({"pred": net(x), "target": y})
    layer = net[2].weight  # the default probe: the last weight matrix
    raw_a, raw_b = (objective.terms[i].raw({"pred": net(x), "target": y}) for i in (0, 1))
    (grad_a,) = torch.autograd.grad(raw_a, layer)
    (grad_b,) = torch.autograd.grad(raw_b, layer)
    expected = (grad_a.norm() / (grad_b.norm() + 1e-4)).clamp(0, 1e4)
    assert value.weights["mse_b"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert not value.weights["mse_b"].requires_grad  # detached
    assert value.weighted["mse_b"].item() == pytest.approx((expected * raw_b).item(), rel=1e-6)
    assert value.total.item() == pytest.approx((raw_a + expected * raw_b).item(), rel=1e-6)
    assert objective.weighting.ratio.item() == pytest.approx(expected.item(), rel=1e-6)
    assert str(objective) == "J(θ) = 1·mse_a(ŷ, y) + w_t·mse_b(ŷ, y) [grad_ratio]"
    with torch.no_grad():  # evaluation: the last training step's ratio, no gradient taken
        assert objective({"pred": net(x), "target": y}).weights["mse_b"] == pytest.approx(
            expected.item(), rel=1e-6
        )


def train_with_grad_ratio(scale_b: float, eps_mode: str, steps: int = 100):
    net = network(torch.float64)
    x, y = toy_batch(torch.float64)
    policy = GradRatio("mse_b", "mse_a", eps=1e-4, eps_mode=eps_mode)
    objective = Objective(two_outputs(scale_b), weighting=policy).bind(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    ratios = []
    for step in range(steps):
        optimizer.zero_grad()
        value = objective({"pred": net(x), "target": y}, step)
        ratios.append(value.weights["mse_b"].item())
        value.total.backward()
        optimizer.step()
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()]), ratios


def test_grad_ratio_with_a_relative_eps_is_invariant_to_the_balanced_terms_scale():
    once, ratios = train_with_grad_ratio(1.0, "relative")
    thousandfold, ratios_k = train_with_grad_ratio(1000.0, "relative")
    assert max(ratios) < 1e4 and max(ratios_k) < 1e4  # the clamp was not reached
    assert min(ratios) < 1 / 1e-4  # nor the relative guard (λ ≤ 1/ε)
    assert ratios_k[0] == pytest.approx(ratios[0] / 1000, rel=1e-12)
    assert (once - thousandfold).abs().max() < 1e-5
    # VQGAN's absolute ε (‖∇L_bal‖ + 1e-4) is not invariant: ε matters 1000× more for the
    # run whose balanced gradient is 1000× smaller
    absolute, _ = train_with_grad_ratio(1.0, "absolute")
    absolute_k, _ = train_with_grad_ratio(1000.0, "absolute")
    assert (absolute - absolute_k).abs().max() > 1e-5
    start = torch.cat([p.detach().reshape(-1) for p in network(torch.float64).parameters()])
    assert (once - start).abs().max() > 1e-2  # and training moved the parameters


def test_grad_ratio_refuses_a_probe_that_is_not_a_parameter():
    objective = Objective(two_outputs(), weighting=GradRatio("mse_b", "mse_a", layer="9.weight"))
    with pytest.raises(ConfigError, match=r"weighting.layer=9.weight is not a trainable parameter"):
        objective.bind(network())
    # the key named is grad_ratio's own (it has no `weighting.terms`)
    with pytest.raises(
        ConfigError, match=r"^weighting\.term=mse_c is not a term .*weighting\.term=mse_a$"
    ):
        Objective(two_outputs(), weighting=GradRatio("mse_c", "mse_a"))
    with pytest.raises(ConfigError, match=r"^weighting\.reference=mse_d is not a term"):
        Objective(two_outputs(), weighting=GradRatio("mse_b", "mse_d"))
    with pytest.raises(ConfigError, match=r"weighting\.eps_mode must be"):
        GradRatio("mse_b", "mse_a", eps_mode="both")


# -- uncertainty ----------------------------------------------------------------------------
def test_uncertainty_is_kendalls_objective_and_its_log_variances_train():
    net = network()
    x, y = toy_batch()
    objective = Objective(two_outputs(), weighting=Uncertainty()).bind(net)
    with torch.no_grad():
        objective.weighting.log_variance.copy_(torch.tensor([0.5, -1.0]))
    value = objective({"pred": net(x), "target": y})
    raw = value.raw
    expected = math.exp(-0.5) * raw["mse_a"] + 0.5 + math.exp(1.0) * raw["mse_b"] - 1.0
    assert value.total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert value.weights["mse_b"].item() == pytest.approx(math.exp(1.0), rel=1e-6)
    (grad,) = torch.autograd.grad(value.total, objective.weighting.log_variance)
    expected_grad = [1 - math.exp(-0.5) * raw["mse_a"].item(), 1 - math.e * raw["mse_b"].item()]
    assert grad.tolist() == pytest.approx(expected_grad, rel=1e-5)
    assert "weighting.log_variance" in dict(objective.named_parameters())
    assert str(objective) == "J(θ) = w_t·mse_a(ŷ, y) + w_t·mse_b(ŷ, y) [uncertainty]"


def compose_run(output_dir: Path, *overrides: str):
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[*QUIET, *overrides, f"paths.output_dir={output_dir}"])
    GlobalHydra.instance().clear()
    return cfg


@pytest.mark.slow
def test_uw_two_heads_learns_the_inverse_noise_ratio(tmp_path: Path):
    """w = e^{−s} settles at 1/MSE; on outputs with σ = 0.1 and 1.0 the learned
    w_b/w_a → σ_a²/σ_b² = 0.01 (±30 %)."""
    train(compose_run(tmp_path, "experiment=uw_two_heads", "test=false"))
    scalars = read_scalars(tmp_path / "tensorboard")
    w_a, w_b = scalars["train/weight/mse_a"][-1][1], scalars["train/weight/mse_b"][-1][1]
    assert w_b / w_a == pytest.approx(0.01, rel=0.3)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["state_dict"]
    s = state["objective.weighting.log_variance"]  # the log-variances are in the checkpoint
    # a few steps after the last logged one: the same weights, moved a little
    assert torch.exp(-s).tolist() == pytest.approx([w_a, w_b], rel=0.02)


# -- every policy in a run ------------------------------------------------------------------
TWO_HEADS = [
    "experiment=uw_two_heads", "data.source.n=400", "model.hidden=[8]", "data.batch_size=64",
    "trainer.deterministic=true", "test=false", "logger=none", "callbacks.grad_attribution=null",
]  # fmt: skip
POLICIES = {
    "constant": ["weighting=constant", "loss.mse_b.weight={schedule:linear,start:0,end:1,steps:8}"],
    "uncertainty": ["weighting=uncertainty"],
    "grad_ratio": ["weighting=grad_ratio", "weighting.term=mse_b", "weighting.reference=mse_a"],
    "pcgrad": ["weighting=pcgrad"],
}


@pytest.mark.slow
@pytest.mark.parametrize("policy", list(POLICIES))
def test_resume_mid_run_reproduces_an_uninterrupted_one(tmp_path: Path, policy: str):
    settings = [*TWO_HEADS, *POLICIES[policy]]
    train(compose_run(tmp_path / "whole", *settings, "trainer.max_epochs=4"))
    train(compose_run(tmp_path / "cut", *settings, "trainer.max_epochs=2"))
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["epoch"] == 1
    train(compose_run(tmp_path / "cut", *settings, "trainer.max_epochs=4", f"ckpt_path={last}"))
    whole = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.ckpt")["state_dict"]
    again = load_checkpoint(last)["state_dict"]
    assert whole.keys() == again.keys()
    assert any(k.startswith("objective.weighting") for k in whole) == (
        policy in ("uncertainty", "grad_ratio")
    )
    for name in whole:
        torch.testing.assert_close(again[name], whole[name], rtol=0, atol=1e-6)


def test_every_policy_logs_the_weight_it_used(tmp_path: Path):
    settings = [*TWO_HEADS, "logger=tensorboard", "trainer.max_epochs=2",
                "trainer.log_every_n_steps=1"]  # fmt: skip
    train(compose_run(tmp_path / "constant", *settings, *POLICIES["constant"]))
    scalars = read_scalars(tmp_path / "constant" / "tensorboard")
    ramp = LinearRamp(0, 1, 8)
    steps = [s for s, _ in scalars["train/weight/mse_a"]]
    assert steps == list(range(len(steps))) and len(steps) >= 6  # every step of 2 epochs
    assert [v for _, v in scalars["train/weight/mse_a"]] == [1.0] * len(steps)
    assert scalars["train/weight/mse_b"] == [(s, pytest.approx(ramp(s))) for s in steps]
    train(compose_run(tmp_path / "ratio", *settings, *POLICIES["grad_ratio"]))
    scalars = read_scalars(tmp_path / "ratio" / "tensorboard")
    weights, terms, raws = (dict(scalars[f"train/{k}/mse_b"]) for k in ("weight", "term", "raw"))
    assert len(weights) == len(steps) and len(set(weights.values())) > 1
    for step, weight in weights.items():  # the weight logged is the one the term trained with
        assert terms[step] == pytest.approx(weight * raws[step], rel=1e-5)


def test_a_term_reads_one_column_and_a_missing_column_is_refused(tmp_path: Path):
    pred, target = torch.randn(5, 3), torch.randn(5, 3)
    term = LossTerm("mse", nn.MSELoss(), columns=2)
    assert term.raw({"pred": pred, "target": target}) == nn.functional.mse_loss(
        pred[:, 2:], target[:, 2:]
    )
    both = LossTerm("mse", nn.MSELoss(), columns=[0, 2])
    expected = nn.functional.mse_loss(pred[:, [0, 2]], target[:, [0, 2]])
    assert both.raw({"pred": pred, "target": target}) == expected
    with pytest.raises(ConfigError, match=r"loss.mse_b.columns=2, but `pred` has 2 column"):
        train(compose_run(tmp_path, *TWO_HEADS, "loss.mse_b.columns=2"))
    with pytest.raises(ConfigError, match=r"loss.mse.columns must be a column index"):
        LossTerm("mse", nn.MSELoss(), columns="last")


def test_constant_adds_no_policy_and_a_player_task_weighs_the_named_player():
    loss = OmegaConf.create({"mse": {"fn": {"_target_": "torch.nn.MSELoss"}}})
    constant = OmegaConf.create({"_target_": "objectives.objective.weighting.constant"})
    assert build_objective(loss, None, constant).weighting is None
    gan = OmegaConf.load(config_dir() / "loss" / "gan_ns.yaml")
    uncertainty = OmegaConf.load(config_dir() / "weighting" / "uncertainty.yaml")
    uncertainty.player = "gen"
    objectives = build_player_objectives({"gan_ns": gan}, None, ["gen", "disc"], "disc",
                                         uncertainty)  # fmt: skip
    assert isinstance(objectives["gen"].weighting, Uncertainty)
    assert objectives["disc"].weighting is None
    uncertainty.player = "critic"
    with pytest.raises(ConfigError, match=r"weighting\.player=critic is not a player"):
        build_player_objectives({"gan_ns": gan}, None, ["gen", "disc"], "disc", uncertainty)


@pytest.mark.slow
def test_benchmark_compares_every_policy_with_constant(capsys):
    load_script("benchmark").main(
        ["--compare", "weighting", "--rounds", "1", "--epochs", "2", "--startup-repeats", "0",
         "--override", "data.source.n=1024"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "work=two_heads device=cpu" in out
    for policy in ("constant", "uncertainty", "grad_ratio", "pcgrad"):
        assert re.search(rf"^{policy} +time per step / constant: ", out, re.MULTILINE)


@pytest.mark.slow
def test_a_gan_player_trains_its_own_policy(tmp_path: Path):
    """weighting.player=gen: the generator's term gets a log-variance that its optimizer
    trains; the critic's objective (gan_ns + r1) keeps its weights, logged too."""
    settings = ["experiment=ring_gan", "trainer.max_epochs=1", "test=false", "data.source.n=512",
                "data.batch_size=32", "trainer.log_every_n_steps=1", "task.eval_samples=64",
                "weighting=uncertainty", "weighting.player=gen"]  # fmt: skip
    train(compose_run(tmp_path, *settings))
    scalars = read_scalars(tmp_path / "tensorboard")
    weights = [v for _, v in scalars["train/gen/weight/gan_ns"]]
    assert len(weights) > 2 and weights[0] == 1.0 and weights[-1] != 1.0  # it moved
    assert {v for _, v in scalars["train/disc/weight/r1"]} == {1.0}
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["state_dict"]
    s = state["player_objectives.gen.weighting.log_variance"]
    assert math.exp(-s.item()) == pytest.approx(weights[-1], rel=0.05)


@pytest.mark.parametrize("policy", [PCGrad(), GradRatio("mse_b", "mse_a")])
def test_an_eval_mode_objective_is_differentiable_in_its_inputs(policy):
    """A callback that differentiates J in eval mode (the saliency figure) gets the plain J
    (pcgrad) or the last ratio (grad_ratio), not a training step's surrogate."""
    net = network()
    x, y = toy_batch()
    objective = Objective(two_outputs(), weighting=policy).bind(net).eval()
    inputs = x.clone().requires_grad_(True)
    value = objective({"pred": net(inputs), "target": y})
    expected = value.weighted["mse_a"] + value.weighted["mse_b"]
    assert torch.equal(value.total, expected)
    (gradient,) = torch.autograd.grad(value.total, inputs)
    assert gradient.abs().sum() > 0


def test_the_toys_pareto_criterion_is_the_min_norm_point_of_the_hull():
    toy = load_script("pcgrad_toy")
    generator = torch.Generator().manual_seed(1)
    alphas = torch.linspace(0, 1, 100001, dtype=torch.float64).unsqueeze(1)
    for _ in range(5):
        g1, g2 = torch.randn(2, 2, generator=generator, dtype=torch.float64)
        brute = (alphas * g1 + (1 - alphas) * g2).norm(dim=1).min().item()
        assert toy.min_norm_in_hull(g1, g2) == pytest.approx(brute, abs=1e-6)
    opposed = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert toy.min_norm_in_hull(opposed, -3 * opposed) == pytest.approx(0.0, abs=1e-15)


def test_the_toys_front_is_pareto_stationary_and_not_a_line_of_constant_x2():
    toy = load_script("pcgrad_toy")
    front = toy.pareto_front([0.01, 0.9, 0.999])
    for _, x1, x2 in front:
        assert toy.hull_norm_at(torch.tensor([x1, x2], dtype=torch.float64)) < 1e-6
    x1s, x2s = [p[1] for p in front], [p[2] for p in front]
    assert x1s[0] < -6 and x1s[-1] > 6  # it spans the front from end to end
    assert max(x2s) - min(x2s) > 0.05  # x₂ is higher in the middle (≈ −8.355) than at the ends
