"""Weight schedules: each against its definition, the cyclical one against a transcription
of Fu et al. 2019's reference function, and the YAML form a user types."""

from __future__ import annotations

import math

import numpy as np
import pytest
from omegaconf import OmegaConf

from objectives.errors import ConfigError
from objectives.objective import as_weight, build_objective
from objectives.objective.weights import Constant, Cosine, Cyclical, LinearRamp, Step


def frange_cycle_linear(n_iter, start=0.0, stop=1.0, n_cycle=4, ratio=0.5):
    """Transcribed from the reference code of Fu et al. 2019 (haofuml/cyclical_annealing)."""
    L = np.ones(n_iter) * stop
    period = n_iter / n_cycle
    step = (stop - start) / (period * ratio)  # linear schedule

    for c in range(n_cycle):
        v, i = start, 0
        while v <= stop and (int(i + c * period) < n_iter):
            L[int(i + c * period)] = v
            v += step
            i += 1
    return L


@pytest.mark.parametrize(
    "n_iter, start, stop, n_cycle, ratio",
    [
        (100, 0.0, 1.0, 4, 0.5),
        (1000, 0.0, 1.0, 4, 0.5),
        (1003, 0.1, 0.9, 3, 0.7),  # a period that is not an integer
        (50, 0.0, 2.0, 1, 1.0),  # one ramp over the whole run
        (37, 0.5, 0.5, 5, 0.25),  # start = stop: a flat line
        (10, 0.0, 1.0, 10, 0.5),  # period of one step
    ],
)
def test_cyclical_is_the_reference_function_at_every_step(n_iter, start, stop, n_cycle, ratio):
    reference = frange_cycle_linear(n_iter, start, stop, n_cycle, ratio)
    schedule = Cyclical(n_iter, start, stop, n_cycle, ratio)
    assert [schedule(s) for s in range(n_iter)] == reference.tolist()
    assert schedule(n_iter) == schedule(10 * n_iter) == stop  # after the run: stop


def test_cyclical_rises_over_the_ratio_of_each_period_then_holds():
    schedule = Cyclical(n_iter=80, start=0.0, stop=1.0, n_cycle=4, ratio=0.5)  # period 20
    for c in range(4):
        ramp = [schedule(20 * c + i) for i in range(10)]
        assert ramp == pytest.approx([i / 10 for i in range(10)], abs=1e-12)
        assert [schedule(20 * c + i) for i in range(11, 20)] == [1.0] * 9


def test_linear_cosine_and_step_follow_their_formulas():
    ramp, cosine = LinearRamp(2.0, 0.0, steps=8), Cosine(2.0, 0.0, steps=8)
    for s in range(12):
        t = min(s, 8) / 8
        assert ramp(s) == pytest.approx(2.0 - 2.0 * t, abs=1e-15)
        assert cosine(s) == pytest.approx(math.cos(math.pi * t) + 1.0, abs=1e-15)
    assert cosine(4) == pytest.approx(1.0)  # halfway
    step = Step(value=0.8, start_step=3)
    assert [step(s) for s in range(6)] == [0.0, 0.0, 0.0, 0.8, 0.8, 0.8]
    assert [Step(1.0, 0, before=5.0)(s) for s in range(2)] == [1.0, 1.0]


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"schedule": "constant", "value": 0.3}, Constant(0.3)),
        ({"schedule": "linear", "start": 0, "end": 1, "steps": 10}, LinearRamp(0, 1, 10)),
        ({"schedule": "cosine", "start": 1, "end": 0.1, "steps": 7}, Cosine(1, 0.1, 7)),
        ({"schedule": "step", "value": 2, "start_step": 5}, Step(2, 5)),
        ({"schedule": "cyclical", "n_iter": 40}, Cyclical(40)),
        (
            {"schedule": "cyclical", "n_iter": 40, "n_cycle": 2, "ratio": 1},
            Cyclical(40, 0, 1, 2, 1),
        ),
    ],
)
def test_a_mapping_names_its_schedule(settings, expected):
    weight = as_weight(OmegaConf.create(settings), "loss.kl")
    assert type(weight) is type(expected)
    assert [weight(s) for s in range(50)] == [expected(s) for s in range(50)]
    assert str(weight) == str(expected)


def test_a_term_weight_set_in_yaml_and_on_the_command_line_is_a_schedule():
    loss = OmegaConf.create(
        {
            "mse": {
                "fn": {"_target_": "torch.nn.MSELoss"},
                "weight": {"schedule": "cyclical", "n_iter": 8, "n_cycle": 2},
            }
        }
    )
    objective = build_objective(loss)
    assert [objective.terms[0].weight(s) for s in range(8)] == [0, 0.5, 1, 1, 0, 0.5, 1, 1]
    assert "cyclical(0→1, 2 cycles in 8 steps, ratio 0.5)·mse(pred, target)" in str(objective)


def test_the_command_line_dict_override_builds_a_schedule(compose_cfg):
    cfg = compose_cfg("loss=mse", "loss.mse.weight={schedule:cosine,start:1,end:0,steps:4}")
    objective = build_objective(cfg.loss)
    assert [objective.terms[0].weight(s) for s in range(5)] == pytest.approx(
        [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0]
    )


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"schedule": "exp", "rate": 2},
            r"loss\.kl\.weight\.schedule must be one of constant, linear",
        ),
        ({"start": 0}, r"loss\.kl\.weight\.schedule must be one of"),
        (
            {"schedule": "linear", "start": 0, "end": 1},
            r"loss\.kl\.weight: schedule linear needs steps",
        ),
        ({"schedule": "step", "value": 1, "at": 3}, r"schedule step has no argument at"),
        ({"schedule": "cyclical", "n_iter": 0}, r"loss\.kl\.weight\.n_iter must be a positive"),
        ({"schedule": "cyclical", "n_iter": 9, "ratio": 0}, r"loss\.kl\.weight\.ratio must be"),
        ({"schedule": "cyclical", "n_iter": 9, "start": 1, "stop": 0}, r"stop=0 is below start=1"),
        (
            {"schedule": "cosine", "start": "a", "end": 0, "steps": 3},
            r"weight\.start must be a fin",
        ),
        ({"schedule": "linear", "start": 0, "end": -1, "steps": 3}, r"finite number ≥ 0, got -1"),
        ({"schedule": "step", "value": 1, "start_step": -2}, r"weight\.start_step must be an int"),
    ],
)
def test_a_bad_schedule_is_one_line_naming_the_key(settings, message):
    with pytest.raises(ConfigError, match=message):
        as_weight(OmegaConf.create(settings), "loss.kl")
