"""Bad command lines, generated from the config tree itself: for every config group, an
unknown option, `null`, an unknown key (in the group and in each of its options), a
syntax error; for every number, flag and list a user can set in the default run and in
the options a group offers, a wrong type, NaN, an empty list and, where the key must be
positive, a negative and a zero. tests/test_bad_overrides.py runs each as `python
train.py ...` in this process.

A value that is a valid setting (Lightning's `max_steps=-1`, "no limit") is no bad case:
`VALID` names each such key with the reason, so the list stays honest as configs grow.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, ListConfig, OmegaConf

from objectives.run.config import config_dir, group_options, package_of

# groups a user picks options of (hydra/ is Hydra's own)
GROUPS = ["loss", "regularizer", "model", "data", "task", "augment", "weighting", "optimizer",
          "scheduler", "trainer", "callbacks", "logger", "experiment", "debug", "sweep",
          "hparams_search", "paths"]  # fmt: skip
# option sets whose numbers are tried, beside the default run (each a few overrides)
VARIANTS = [
    [],
    ["model=mlp"],
    ["optimizer=sgd"],
    ["scheduler=cosine"],
    ["regularizer=[l1,l2]"],
    ["loss=huber"],
    ["loss=quantile"],
    ["weighting=uncertainty"],
]
# keys whose value is no number to try (paths, names, targets, interpolated choices)
SKIPPED_KEYS = re.compile(
    r"(^|\.)(_target_|_partial_|name|symbol|reads|task_name|optimized_metric|ckpt_path|"
    r"dirpath|filename|monitor|mode|log_dir|output_dir|save_dir|version|sub_dir|prefix|"
    r"logging_interval|accelerator|strategy|precision|profiler|default_root_dir|root|path|"
    r"target|reduction|player|layer|schedule|eps_mode|terms)$"
)
# settings where a value below is valid, with why; a case is dropped when its
# (key, value) is listed here
VALID = {
    ("trainer.max_steps", "-1"): "Lightning: -1 means no step limit",
    ("trainer.max_epochs", "-1"): "Lightning: -1 trains until stopped (max_steps, a signal)",
    ("trainer.num_sanity_val_steps", "-1"): "Lightning: -1 runs the whole validation set",
    ("seed", "null"): "null draws a seed",
    ("model.hidden", "[]"): "an MLP without hidden layers is a linear model",
    ("data.test_fraction", "0"): "no test split, fine with test=false (test=true refuses it)",
    ("torch_threads", "null"): "null keeps torch's default",
}
# keys that must be > 0: a negative and a zero are bad there
POSITIVE = re.compile(
    r"^(batch_size|max_epochs|lr|hidden|log_every_n_steps|"
    r"check_val_every_n_epoch|accumulate_grad_batches|devices|n|delta|beta|T_max|"
    r"torch_threads)$"
)


# intervals of the project's callbacks: 0 is off, a negative one is bad
NON_NEGATIVE = re.compile(r"^(every_n_steps|every_n_epochs|histogram_every_n_epochs)$")
# fractions and probabilities: a huge value is out of range
BOUNDED = re.compile(r"(fraction|dropout|label_smoothing|momentum|ema_decay)$")
# numbers given an empty list (one kind of wrong type, tried where it reads naturally)
EMPTY_LIST_TRIED = re.compile(r"^(batch_size|lr|max_epochs|weight|noise)$")


def composed(overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose("train", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


def leaves(node: object, prefix: str = "") -> Iterator[tuple[str, object]]:
    """Every settable scalar (or list of scalars) of `node`, by its dotted key; values that
    interpolate another key are left out (they follow that key)."""
    if isinstance(node, DictConfig):
        for key in node:
            full = f"{prefix}{key}"
            raw = node._get_node(key)._value()
            if isinstance(raw, str) and "${" in raw:
                continue
            yield from leaves(node[key], full + ".")
    elif isinstance(node, ListConfig):
        items = list(node)
        if all(not isinstance(v, DictConfig | ListConfig) for v in items):
            yield prefix.rstrip("."), items
    else:
        yield prefix.rstrip("."), node


def bad_values(key: str, value: object) -> list[str]:
    """The wrong values to try for a setting of this kind: a wrong type always; NaN for a
    real number; a negative and a zero where it must be positive; a huge value where it is
    a fraction or a probability; an empty list where it takes numbers."""
    leaf = key.rsplit(".", 1)[-1]
    if isinstance(value, bool):
        return ["maybe"]
    if isinstance(value, int | float):
        found = ["abc"]
        if isinstance(value, float):
            found.append("nan")
        if POSITIVE.search(leaf):
            found += ["-1", "0"]
        elif NON_NEGATIVE.search(leaf) and "checkpoint" not in key:  # Lightning's own: -1 ok?
            found.append("-1")
        if BOUNDED.search(leaf):
            found.append("1e9")
        if EMPTY_LIST_TRIED.search(leaf):
            found.append("[]")
        return found
    if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
        return ["[abc]", "[]", "[-1]"] if POSITIVE.search(leaf) else ["[abc]"]
    return []


def number_cases() -> Iterator[list[str]]:
    seen: set[tuple[str, str]] = set()
    for variant in VARIANTS:
        cfg = composed(variant)
        for key, value in leaves(cfg):
            if key.startswith(("hydra", "paths")) or SKIPPED_KEYS.search(key) or value is None:
                continue
            for bad in bad_values(key, value):
                if (key, bad) in seen or (key, bad) in VALID:
                    continue
                seen.add((key, bad))
                yield [*variant, f"{key}={bad}"]


def group_cases() -> Iterator[list[str]]:
    root = config_dir()
    for group in GROUPS:
        yield [f"{group}=no_such_option"]
        yield [f"{group}=null"]
        yield [f"{group}.x=[1"]  # an unclosed bracket
        for option in group_options(group):
            text = (root / group / f"{option}.yaml").read_text()
            package = package_of(text, group)
            if package == "" or group in ("sweep", "hparams_search", "debug"):
                continue  # a recipe of the whole config: no node of its own
            where = package if package != group else group
            yield [f"{group}={option}", f"{where}.no_such_key=1"]


def bad_command_lines() -> list[list[str]]:
    """Every generated case, in a stable order."""
    return [*group_cases(), *number_cases()]


if __name__ == "__main__":  # `python -m tests.bad_overrides`: the list, one case a line
    cases = bad_command_lines()
    for case in cases:
        print(" ".join(case))
    print(len(cases), "cases")
    OmegaConf.clear_resolvers()
