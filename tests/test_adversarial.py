"""GAN losses against hand values and gradcheck; critic penalties (WGAN-GP, R1) against closed
forms and torch.func; the GAN networks with and without spectral normalisation."""

from __future__ import annotations

import functools

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.func import functional_call, grad, vmap

from objectives.errors import ConfigError
from objectives.losses import adversarial as adv
from objectives.models import MLP, GANNetworks
from objectives.regularizers import GradientPenalty, R1Penalty
from objectives.run.config import config_dir
from objectives.run.sizes import build_model

GAMES = {
    "gan_ns": (adv.ns_discriminator, adv.ns_generator),
    "gan_minimax": (adv.minimax_discriminator, adv.minimax_generator),
    "gan_hinge": (adv.hinge_discriminator, adv.hinge_generator),
    "wgan": (adv.wgan_discriminator, adv.wgan_generator),
    "lsgan": (adv.lsgan_discriminator, adv.lsgan_generator),
}

# logits D(x) = (2, −1) on real data and D(G(z)) = (0, −3) on generated data
REAL = [2.0, -1.0]
FAKE = [0.0, -3.0]
# by hand, softplus(t) = ln(1 + eᵗ): softplus(−2) = 0.126928, softplus(1) = 1.313262,
# softplus(0) = ln 2 = 0.693147, softplus(−3) = 0.048587, softplus(3) = 3.048587
EXPECTED = {
    # (0.126928 + 1.313262)/2 + (0.693147 + 0.048587)/2;  (0.693147 + 3.048587)/2
    "gan_ns": (1.0909621153, 1.8708672661),
    # same D loss; −(0.693147 + 0.048587)/2
    "gan_minimax": (1.0909621153, -0.3708672661),
    # (relu(−1) + relu(2))/2 + (relu(1) + relu(−2))/2 = 1 + 0.5;  −(0 − 3)/2
    "gan_hinge": (1.5, 1.5),
    # (0 − 3)/2 − (2 − 1)/2;  −(0 − 3)/2
    "wgan": (-2.0, 1.5),
    # ((2−1)² + (−1−1)²)/2 + (0² + (−3)²)/2 = 2.5 + 4.5;  ((0−1)² + (−3−1)²)/2
    "lsgan": (7.0, 8.5),
}


@pytest.mark.parametrize("game", sorted(GAMES))
def test_losses_match_hand_computed_values(game: str) -> None:
    disc, gen = GAMES[game]
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    expected_disc, expected_gen = EXPECTED[game]
    assert disc(real, fake).item() == pytest.approx(expected_disc, abs=1e-6)
    assert gen(fake).item() == pytest.approx(expected_gen, abs=1e-6)
    # the critic's (N, 1) output is read as (N,)
    assert disc(real[:, None], fake[:, None]).item() == pytest.approx(expected_disc, abs=1e-6)
    assert gen(fake[:, None]).item() == pytest.approx(expected_gen, abs=1e-6)


def test_scores_of_another_shape_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(N, 1\)"):
        adv.ns_discriminator(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="fake_score"):
        adv.wgan_generator(torch.zeros(4, 1, 1))


def test_ns_and_minimax_share_the_discriminator_but_not_the_generator_gradient() -> None:
    real = torch.tensor([1.5, -0.5, 3.0])
    fake = torch.tensor([-12.0, -8.0, 0.0], requires_grad=True)
    assert adv.minimax_discriminator(real, fake) == adv.ns_discriminator(real, fake)
    # the minimax generator is minus the discriminator's fake part: a zero-sum game
    fake_part = adv.ns_discriminator(real, fake) - adv.ns_discriminator(
        real, fake.new_full((3,), -1e4)
    )
    assert adv.minimax_generator(fake).item() == pytest.approx(-fake_part.item(), abs=1e-6)
    (g_ns,) = torch.autograd.grad(adv.ns_generator(fake), fake)
    (g_mm,) = torch.autograd.grad(adv.minimax_generator(fake), fake)
    # d/dt softplus(−t) = −σ(−t), d/dt −softplus(t) = −σ(t), each over the batch of 3
    assert torch.allclose(g_ns, -torch.sigmoid(-fake.detach()) / 3)
    assert torch.allclose(g_mm, -torch.sigmoid(fake.detach()) / 3)
    # rejected fakes (D(G(z)) ≪ 0): the minimax gradient vanishes, the NS one does not
    assert g_ns[0].abs().item() == pytest.approx(1 / 3, rel=1e-5)
    assert g_mm[0].abs().item() < 1e-5
    assert g_ns[2].item() == pytest.approx(g_mm[2].item())  # equal at D(G(z)) = 0: both −½/3


@pytest.mark.parametrize("game", sorted(GAMES))
def test_losses_pass_gradcheck(game: str) -> None:
    disc, gen = GAMES[game]
    # away from the hinge's kinks at ±1
    real = torch.tensor([2.3, -0.4, 0.7, 1.6], dtype=torch.float64, requires_grad=True)
    fake = torch.tensor([-2.2, 0.3, -0.6, 1.4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(disc, (real, fake))
    assert torch.autograd.gradcheck(gen, (fake,))


def test_losses_are_finite_for_extreme_logits() -> None:
    big = torch.tensor([1e4, -1e4])
    for disc, gen in GAMES.values():
        assert torch.isfinite(disc(big, -big)) and torch.isfinite(gen(big))


@pytest.mark.parametrize("game", sorted(GAMES))
def test_loss_configs_name_one_function_per_player(game: str) -> None:
    node = OmegaConf.load(config_dir() / "loss" / f"{game}.yaml")
    assert set(node) == {"disc", "gen"}
    assert list(node.disc.reads) == ["real_score", "fake_score"]
    assert list(node.gen.reads) == ["fake_score"]
    for player, fn in zip(("disc", "gen"), GAMES[game], strict=True):
        built = instantiate(node[player].fn)
        assert isinstance(built, functools.partial) and built.func is fn
        assert node[player].weight == 1.0 and node[player].symbol


# --- critic penalties -------------------------------------------------------------------------


def linear_critic(w: list[float], b: float = 0.3) -> nn.Linear:
    critic = nn.Linear(len(w), 1).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([w]))
        critic.bias.fill_(b)
    return critic


def bound(term, critic: nn.Module):
    term.bind(critic)
    return term


def points(n: int = 6, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(n, 2, generator=g, dtype=torch.float64, requires_grad=True)
    return {"real": real, "fake": fake}


def test_penalties_of_a_linear_critic_are_closed_forms() -> None:
    """D(x) = w·x + b has ∇D = w everywhere: GP = (‖w‖ − 1)², R1 = ½‖w‖², for any data."""
    w = [3.0, -4.0]  # ‖w‖ = 5
    critic = linear_critic(w)
    gp, r1 = bound(GradientPenalty("gp"), critic), bound(R1Penalty("r1"), critic)
    for seed in range(3):
        outputs = points(seed=seed)
        assert gp.raw(outputs).item() == pytest.approx(16.0, rel=1e-12)
        assert r1.raw(outputs).item() == pytest.approx(12.5, rel=1e-12)
    gp_target = bound(GradientPenalty("gp", target=2.0), critic)
    assert gp_target.raw(points()).item() == pytest.approx(9.0, rel=1e-12)


def test_penalties_read_images_per_sample_over_all_dimensions() -> None:
    torch.manual_seed(0)
    w = torch.randn(64, dtype=torch.float64)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(64, 1)).double()
    with torch.no_grad():
        critic[1].weight.copy_(w[None])
    images = {"real": torch.rand(5, 1, 8, 8, dtype=torch.float64)}
    images["fake"] = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    gp = bound(GradientPenalty("gp"), critic).raw(images)
    r1 = bound(R1Penalty("r1"), critic).raw(images)
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-10)
    assert r1.item() == pytest.approx(0.5 * w.square().sum().item(), rel=1e-10)


def test_penalty_gradients_reach_the_critics_weights() -> None:
    w = torch.tensor([0.6, -1.7], dtype=torch.float64)
    critic = linear_critic(w.tolist())
    bound(GradientPenalty("gp"), critic).raw(points()).backward()
    # ∂/∂w (‖w‖ − 1)² = 2(‖w‖ − 1)·w/‖w‖
    assert torch.allclose(critic.weight.grad[0], 2 * (w.norm() - 1) * w / w.norm())
    critic.weight.grad = None
    bound(R1Penalty("r1"), critic).raw(points()).backward()
    assert torch.allclose(critic.weight.grad[0], w)  # ∂/∂w ½‖w‖² = w


def test_penalties_do_not_reach_the_generator() -> None:
    outputs = points()
    value = bound(GradientPenalty("gp"), linear_critic([1.0, 2.0])).raw(outputs)
    assert value.requires_grad
    assert torch.autograd.grad(value, outputs["fake"], allow_unused=True) == (None,)


def test_penalties_work_under_no_grad_as_in_validation() -> None:
    critic = linear_critic([3.0, -4.0])
    gp, r1 = bound(GradientPenalty("gp"), critic), bound(R1Penalty("r1"), critic)
    with torch.no_grad():
        values = gp.raw(points()), r1.raw(points())
    assert [v.item() for v in values] == pytest.approx([16.0, 12.5], rel=1e-12)
    assert not any(v.requires_grad for v in values)
    assert critic.weight.grad is None


def tanh_critic() -> nn.Module:
    torch.manual_seed(1)
    return MLP(2, 1, hidden=[16, 16], activation="tanh").double()


def input_gradients(critic: nn.Module, x: torch.Tensor, params=None) -> torch.Tensor:
    """∇ₓD(x) per sample, independently: vmap of the gradient of the one-sample critic."""
    params = params if params is not None else dict(critic.named_parameters())

    def score(xi: torch.Tensor) -> torch.Tensor:
        return functional_call(critic, params, (xi[None],)).squeeze()

    return vmap(grad(score))(x)


def test_gradient_penalty_of_a_nonlinear_critic_matches_torch_func() -> None:
    critic = tanh_critic()
    outputs = points(n=8)
    torch.manual_seed(123)
    value = bound(GradientPenalty("gp"), critic).raw(outputs)
    torch.manual_seed(123)  # the same ε, drawn the same way
    eps = torch.rand(8, 1, dtype=torch.float64)
    mixed = eps * outputs["real"] + (1 - eps) * outputs["fake"].detach()
    expected = (input_gradients(critic, mixed).norm(dim=1) - 1).square().mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-10)
    assert value.item() > 0


def test_r1_of_a_nonlinear_critic_and_its_parameter_gradient_match_torch_func() -> None:
    critic = tanh_critic()
    real = points(n=8)["real"]
    value = bound(R1Penalty("r1"), critic).raw({"real": real})
    value.backward()

    def r1(params: dict[str, torch.Tensor]) -> torch.Tensor:
        return 0.5 * input_gradients(critic, real, params).square().sum(dim=1).mean()

    params = {k: p.detach() for k, p in critic.named_parameters()}
    assert value.item() == pytest.approx(r1(params).item(), rel=1e-10)
    expected = grad(r1)(params)
    for name, param in critic.named_parameters():
        # the last bias does not move ∇ₓD: autograd leaves its gradient None, torch.func 0
        got = param.grad if param.grad is not None else torch.zeros_like(param)
        assert torch.allclose(got, expected[name], rtol=1e-8, atol=1e-12), name
    assert expected["layers.1.weight"].abs().max() > 0


def test_penalties_keep_the_critic_out_of_their_module_tree() -> None:
    gan = GANNetworks(functools.partial(MLP, hidden=[4]), functools.partial(MLP, hidden=[4]), 2)
    gp = bound(GradientPenalty("gp"), gan)  # a network with a `.critic` binds to it
    assert gp.critic is gan.critic
    assert list(gp.parameters()) == [] and gp.state_dict() == {}
    assert list(gp.children()) == []


def test_penalties_refuse_to_run_unbound_and_bad_settings() -> None:
    with pytest.raises(ConfigError, match="'gp' is not bound to a critic"):
        GradientPenalty("gp").raw(points())
    with pytest.raises(ConfigError, match="'r1' is not bound to a critic"):
        R1Penalty("r1").raw(points())
    with pytest.raises(ConfigError, match="target must be a number ≥ 0"):
        GradientPenalty("gp", target=-1.0)
    with pytest.raises(ConfigError, match="reads must name the real and the generated"):
        GradientPenalty("gp", reads=["real"])
    with pytest.raises(ConfigError, match="weight must be a finite number ≥ 0"):
        R1Penalty("r1", weight=-10.0)
    gp = bound(GradientPenalty("gp"), linear_critic([1.0, 1.0]))
    with pytest.raises(ValueError, match="same shape"):
        gp.raw({"real": torch.zeros(3, 2), "fake": torch.zeros(4, 2)})


@pytest.mark.parametrize(
    ("option", "cls"), [("gradient_penalty", GradientPenalty), ("r1", R1Penalty)]
)
def test_regularizer_configs_build_a_disc_term_once_player_is_popped(option: str, cls) -> None:
    node = OmegaConf.load(config_dir() / "regularizer" / f"{option}.yaml")
    assert node.pop("player") == "disc"
    term = instantiate(node, name=option)
    assert type(term) is cls and term.name == option and term.weight(0) == 10.0
    term.bind(linear_critic([3.0, -4.0]))
    assert term.raw(points()).item() == pytest.approx(
        {"gradient_penalty": 16.0, "r1": 12.5}[option]
    )


# --- the networks -----------------------------------------------------------------------------


def mlp(hidden=(32, 32)) -> functools.partial:
    return functools.partial(MLP, hidden=list(hidden))


def test_gan_networks_on_points() -> None:
    gan = GANNetworks(mlp(), mlp(), in_features=2, noise_dim=3)
    noise = gan.sample_noise(5)
    assert noise.shape == (5, 3) and gan.noise_dim == 3
    assert gan.generate(noise).shape == (5, 2)
    assert gan.critic(torch.randn(5, 2)).shape == (5, 1)
    assert gan(torch.randn(5, 2)).shape == (5, 1)
    g1, g2 = (torch.Generator().manual_seed(7) for _ in range(2))
    assert torch.equal(gan.sample_noise(4, generator=g1), gan.sample_noise(4, generator=g2))
    with pytest.raises(ValueError, match=r"noise must have shape \(N, 3\)"):
        gan.generate(torch.zeros(5, 2))


def test_gan_networks_on_images_generate_in_the_unit_interval() -> None:
    gan = GANNetworks(mlp(), mlp(), in_features=64, in_channels=1, height=8, width=8)
    fake = gan.generate(gan.sample_noise(5))
    assert fake.shape == (5, 1, 8, 8)
    assert fake.min() >= 0 and fake.max() <= 1
    assert gan.critic(fake).shape == (5, 1)
    gp = bound(GradientPenalty("gp"), gan)
    assert gp.raw({"real": torch.rand(5, 1, 8, 8), "fake": fake}).shape == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_features": 0}, "in_features > 0"),
        ({"in_features": 2, "noise_dim": 0}, "noise_dim must be a positive integer"),
        ({"in_features": 64, "in_channels": 1}, "all > 0 or all null"),
        ({"in_features": 63, "in_channels": 1, "height": 8, "width": 8}, "is not in_channels"),
        ({"in_features": 2, "spectral_norm": "yes"}, "spectral_norm must be true or false"),
    ],
)
def test_gan_networks_refuse_bad_sizes_with_one_line(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        GANNetworks(mlp(), mlp(), **kwargs)
    assert "\n" not in str(err.value)


def test_spectral_norm_holds_every_critic_layer_at_singular_value_one() -> None:
    torch.manual_seed(0)
    gan = GANNetworks(mlp((64, 64)), mlp((64, 64)), in_features=2, spectral_norm=True)
    layers = [m for m in gan.critic.modules() if isinstance(m, nn.Linear)]
    assert len(layers) == 3
    assert all(hasattr(m, "parametrizations") for m in layers)
    assert not any(hasattr(m, "parametrizations") for m in gan.generator.modules())
    gan.train()
    # 15 power iterations at wrapping, then one per training forward; the estimate of σ_max
    # approaches it from below, so the normalised weight's norm falls towards 1 from above
    for _ in range(20):
        gan.critic(torch.randn(16, 2))
    for layer in layers:
        original = layer.parametrizations.weight.original
        assert torch.linalg.matrix_norm(original, ord=2).item() != pytest.approx(1.0, abs=0.05)
        sigma = torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=1e-3)
    # the critic with spectral norm still supports the penalties' double backward
    gp = bound(GradientPenalty("gp"), gan)
    gp.raw({"real": torch.randn(8, 2), "fake": torch.randn(8, 2)}).backward()
    assert all(layer.parametrizations.weight.original.grad is not None for layer in layers)


def test_gan_mlp_config_builds_for_points_and_images() -> None:
    factory = instantiate(OmegaConf.load(config_dir() / "model" / "gan_mlp.yaml"))
    gan = build_model(factory, {"in_features": 2, "out_features": 2})
    assert gan.sample_shape == (2,) and not gan.spectral_norm
    dims = {"in_features": 64, "in_channels": 1, "height": 8, "width": 8, "num_classes": 10,
            "out_features": 10}  # fmt: skip
    gan = build_model(factory, dims)
    assert gan.generate(gan.sample_noise(3)).shape == (3, 1, 8, 8)
    hidden = [m.out_features for m in gan.critic.modules() if isinstance(m, nn.Linear)]
    assert hidden == [128, 128, 1]
