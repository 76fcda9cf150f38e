"""The TensorBoard tag names, in one place: every other module asks here.

    {stage}/objective            J, the total that is minimised
    {stage}/term/{name}          w_i·L_i: these sum to the objective
    {stage}/raw/{name}           L_i before its weight
    train/weight/{name}          w_i, the weight the step used (its schedule or the policy's)
    {stage}/{player}/...         the same for each player of a multi-player task (GAN)
    train/grad_norm/{name}       how hard each term pulls on θ (attribution)
    train/grad_cos/{a}__{b}      the cosine between two terms' gradients
    train/layer_grad_norm/{p}    the gradient norm of each parameter tensor

`train/` holds per-step values; the training split's epoch means go to `train_epoch/`, so
a chart never mixes the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

STAGES = ("train", "val", "test")
# the section each stage's epoch-level values go to
EPOCH_PREFIX = {"train": "train_epoch", "val": "val", "test": "test"}
OBJECTIVE = "objective"
TERM = "term"
RAW = "raw"
WEIGHT = "weight"
SKIPPED_STEPS = "train_epoch/skipped_steps"


def tagged(*parts: str) -> str:
    """`train_epoch/gen/objective` from its parts; the empty player of one-objective tasks
    leaves no trace (`train_epoch/objective`)."""
    return "/".join(part for part in parts if part)


def stacked_suffixes(names: Sequence[str]) -> list[str]:
    """[objective, term/<name>..., raw/<name>...]: the order of `ObjectiveValue.stacked()`."""
    return [OBJECTIVE, *(f"{TERM}/{n}" for n in names), *(f"{RAW}/{n}" for n in names)]


def step_tags(player: str, names: Sequence[str]) -> list[str]:
    """Per-step tags of one objective's stacked values (`train/term/mse`, ...)."""
    return [tagged("train", player, suffix) for suffix in stacked_suffixes(names)]


def weight_tags(player: str, names: Sequence[str]) -> list[str]:
    """Per-step tags of one objective's term weights (`train/weight/mse`, `train/gen/weight/..`)."""
    return [tagged("train", player, WEIGHT, n) for n in names]


def epoch_tags(stage: str, player: str, names: Sequence[str]) -> list[str]:
    """Epoch-level tags of one objective's stacked values (`val/term/mse`, ...)."""
    return [tagged(EPOCH_PREFIX[stage], player, suffix) for suffix in stacked_suffixes(names)]


def metric_prefix(stage: str) -> str:
    """What a stage's epoch-level metrics are prefixed with (`train_epoch/`, `val/`)."""
    return f"{EPOCH_PREFIX[stage]}/"


def attribution_tags(names: Sequence[str]) -> list[str]:
    """[each term's gradient norm..., the total's, each pair's cosine...]."""
    return [
        *(f"train/grad_norm/{n}" for n in names),
        f"train/grad_norm/{OBJECTIVE}",
        *(f"train/grad_cos/{a}__{b}" for a, b in combinations(names, 2)),
    ]


def layer_grad_norm_tags(parameter_names: Sequence[str]) -> list[str]:
    return [f"train/layer_grad_norm/{n}" for n in parameter_names]


def objective_layout() -> dict[str, dict[str, list]]:
    """TensorBoard custom-scalars layout: category → chart title → ["Multiline", [regexes]]:
    the objective with its weighted terms on one chart per stage (the seed's "objective vs
    loss" plot), the raw terms on another, the gradient attribution on a third."""
    sections = ("train", *EPOCH_PREFIX.values())
    return {
        "objective and its terms (weighted)": {
            s: ["Multiline", [f"{s}/{OBJECTIVE}", f"{s}/{TERM}/.*"]] for s in sections
        },
        "terms before their weights": {s: ["Multiline", [f"{s}/{RAW}/.*"]] for s in sections},
        "term weights": {"train": ["Multiline", [f"train/{WEIGHT}/.*", f"train/.*/{WEIGHT}/.*"]]},
        "gradient attribution": {
            "norm of each term's gradient": ["Multiline", ["train/grad_norm/.*"]],
            "cosine between terms' gradients (< 0: they fight)": [
                "Multiline",
                ["train/grad_cos/.*"],
            ],
            "per-layer gradient norm": ["Multiline", ["train/layer_grad_norm/.*"]],
        },
    }
