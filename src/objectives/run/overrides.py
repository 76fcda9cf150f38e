"""Refuse a command line that cannot compose, before Hydra composes it: an unknown option of
a config group (`loss=foo`), a group set to `null`, or a required (`???`) key of the root
config left unset (`python eval.py` without `ckpt_path=`).

Hydra's own messages for these are several lines ("Could not find 'loss/foo'", then
"Available options in 'loss':" and one option per line, plus a hint about
HYDRA_FULL_ERROR) or a traceback (`experiment=null`; a `???` that `hydra.run.dir` reads);
here each is one line, like every other configuration error, e.g.
`unknown loss 'foo'; choose one of: bce, ...`. The command line is parsed with Hydra's own
argument and override parsers, so sweeps (`-m loss=mse,foo`, `choice(...)`), lists
(`regularizer=[l1,foo]`) and the `+group=`, `++group=` and `group@pkg=` forms are read the
way Hydra reads them; anything this module cannot read is left to Hydra. Torch is not
imported, so start-up stays fast.

Last, a single run (not `-m`) that sets keys is composed once, the way Hydra will compose
it (~0.1 s): a key that is not in the config (`trainer.foo=1`, a typo or a new key without
`+`) is refused in one line naming the override, the keys that are there and the `+` form,
instead of Hydra's three lines and its hint.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Iterator, Sequence

from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override
from omegaconf import OmegaConf

from objectives.errors import ConfigError
from objectives.run.config import config_dir, group_options, package_of, required_value_error

# Flags that add config folders: options may then live outside configs/, so leave it to Hydra.
OTHER_CONFIG_SOURCES = ("--config-dir", "-cd", "hydra.searchpath")


def check_command_line(
    argv: Sequence[str], config_name: str | None = None, groups: Sequence[str] | None = None
) -> None:
    """Raise a one-line ConfigError for the first override that picks an option no file of
    its group provides (or `null`), then for a `???` key of the root config `config_name`
    that no override sets. `groups`: the groups to check (default: every folder of configs/
    except Hydra's own `hydra`)."""
    args = parse_command_line(argv)
    if args is None:
        return
    overrides = list(args.overrides or [])
    check_grammar(overrides)
    check_sweeper_counts(overrides)
    if any(arg.startswith(OTHER_CONFIG_SOURCES) for arg in [*argv, *overrides]):
        return
    parsed = [p for p in map(parse_override, overrides) if p is not None]
    chosen = check_group_options(parsed, groups)
    name = args.config_name or config_name
    check_root_required(parsed, name, chosen)
    if name and not args.multirun and not (args.help or args.hydra_help or args.cfg):
        check_keys_exist(overrides, name)


def check_keys_exist(overrides: Sequence[str], config_name: str) -> None:
    """Compose `config_name` with `overrides` (Hydra's own keys aside) and turn Hydra's
    refusal of a key the config lacks into one line."""
    from hydra import compose, initialize_config_dir  # deferred: only for a run that sets keys
    from hydra.errors import ConfigCompositionException

    ours = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    if not ours:
        return
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            compose(config_name, overrides=ours)
    except ConfigCompositionException as err:
        message = str(err)
        bad = next((o for o in ours if f"+{o}" in message and not o.startswith("+")), None)
        if bad is None:
            return  # anything else is Hydra's to report, as it would
        key = bad.split("=", 1)[0]
        parent, _, leaf = key.rpartition(".")
        where = f"{parent} has no key {leaf!r}" if parent else f"the config has no key {leaf!r}"
        known = keys_of(config_name, [o for o in ours if o != bad], parent)
        hint = f" (its keys: {', '.join(known)})" if known else ""
        raise ConfigError(
            f"{bad}: {where}{hint}; check the spelling, or add it with +{bad}"
        ) from None


def keys_of(config_name: str, overrides: Sequence[str], node: str) -> list[str]:
    """The keys under `node` ("" for the root) of the composed config."""
    from hydra import compose, initialize_config_dir  # deferred: only to word a refusal

    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name, overrides=list(overrides))
    except Exception:
        return []
    value = OmegaConf.select(cfg, node) if node else cfg
    return sorted(str(k) for k in value) if OmegaConf.is_dict(value) else []


def _parser_of_flags() -> argparse.ArgumentParser:
    parser = get_args_parser()

    def refuse(message: str) -> None:  # instead of printing usage and exiting
        raise ValueError(message)

    parser.error = refuse  # type: ignore[method-assign]
    return parser


def parse_command_line(argv: Sequence[str]) -> argparse.Namespace | None:
    """Hydra's reading of a command line (`overrides`, `config_name`, ...), or None when it
    does not parse (Hydra then reports it)."""
    try:
        args, _ = _parser_of_flags().parse_known_args(list(argv))
    except (ValueError, SystemExit):
        return None
    return args


def flags_first(argv: Sequence[str]) -> list[str]:
    """`argv` with Hydra's flags before the overrides. argparse reads the overrides as one
    positional list, so an override after a flag (`loss=mse,mae -m trainer.max_epochs=1`)
    is refused as an "unrecognized argument"; the shell user meant the same command either
    way. A command line argparse cannot read at all is returned as it is (Hydra reports it)."""
    argv = list(argv)
    try:
        args = _parser_of_flags().parse_intermixed_args(argv)
    except (ValueError, SystemExit, TypeError):
        return argv
    overrides = list(args.overrides or [])
    rest = list(argv)
    for override in overrides:
        rest.remove(override)
    return [*rest, *overrides]


def grammar_error(override: str, reason: str, before: str | None) -> ConfigError:
    """One line for an override Hydra's grammar cannot read, with the likely fix."""
    reason = reason.strip().splitlines()[0] if reason.strip() else "it does not parse"
    if "missing EQUAL" in reason:
        if before is not None and "=" in before:
            return ConfigError(
                f"{override!r} is not a key=value override; if it is the rest of the value "
                f'before it (a space in a path), quote the whole override: "{before} {override}"'
            )
        return ConfigError(
            f"{override!r} is not a key=value override; write key=value, e.g. loss=huber"
        )
    return ConfigError(
        f"cannot read the override {override!r}: {reason} (Hydra's override grammar); check "
        "its brackets, commas and quotes, and quote a value with spaces or special "
        "characters: key='a value'"
    )


# the sweeper's counts Hydra passes on unchecked (Optuna with 0 trials ends in a traceback:
# "No trials are completed yet")
SWEEPER_COUNTS = ("hydra.sweeper.n_trials", "hydra.sweeper.n_jobs")


def check_sweeper_counts(overrides: Sequence[str]) -> None:
    """Refuse a count of trials or parallel jobs that is not a whole number ≥ 1."""
    from objectives import checks  # deferred: the foundation's checks, on this path only

    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        if key in SWEEPER_COUNTS:
            parsed = parse_override(override)
            number = parsed.value() if parsed is not None else value
            checks.positive_int(number, key, example=8)


def check_grammar(overrides: Sequence[str]) -> None:
    """Refuse, in one line, the first override Hydra's grammar cannot read (Hydra prints its
    parser's traceback for it)."""
    before = None
    for override in overrides:
        try:
            _parser().parse_override(override)
        except Exception as err:
            raise grammar_error(override, str(err), before) from None
        before = override


@functools.cache
def _parser() -> OverridesParser:
    return OverridesParser.create()


def parse_override(override: str) -> Override | None:
    """One override as Hydra reads it; None if its grammar refuses it (Hydra reports that)."""
    try:
        return _parser().parse_override(override)
    except Exception:
        return None


def chosen_options(parsed: Override) -> list[str | None] | None:
    """The option names an override selects, e.g. `["mse", "foo"]` for `loss=mse,foo`,
    `[None]` for `loss=null`; None for a deletion, a glob or a range sweep."""
    if parsed.is_delete() or parsed.value_type is None:
        return None
    value = parsed.value()
    if value is None:
        return [None]
    values = value.list if isinstance(value, ChoiceSweep) else [value]
    return list(_names(values))


def _names(values: Sequence[object]) -> Iterator[str]:
    for value in values:
        if isinstance(value, list | tuple):
            yield from _names(value)
        elif isinstance(value, str | int | float) and "${" not in str(value):
            yield str(value)  # not None (no option), an interpolation, a glob or a range


def check_group_options(
    parsed: Sequence[Override], groups: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """Refuse an unknown option or a `null` one; returns the options each group override
    chose (`{"loss": ["mse"]}`). A key override (`seed=1`, `loss.mse.weight=2`) names no
    folder of configs/ and is skipped, as are Hydra's own groups (`hydra/launcher=...`)."""
    root = config_dir()
    chosen: dict[str, list[str]] = {}
    for override in parsed:
        group = override.key_or_group
        if group == "hydra" or group.startswith("hydra/") or not (root / group).is_dir():
            continue
        names = chosen_options(override)
        if names is None or (groups is not None and group not in groups):
            continue
        known = group_options(group)
        for name in names:
            if name is None:  # Hydra fails on `experiment=null` with a traceback
                raise ConfigError(
                    f"{group}=null selects no {group} option; leave it out to keep the default, "
                    f"remove the group with ~{group}, or choose one of: {', '.join(known)}"
                )
            nested = "/" in name and not name.startswith("/")  # an option in a sub-folder
            if name not in known and not (nested and (root / group / f"{name}.yaml").is_file()):
                if not known:  # configs/local/ (git-ignored) holds no file yet
                    raise ConfigError(
                        f"unknown {group} {name!r}: configs/{group}/ has no option yet; write "
                        f"configs/{group}/{name}.yaml first (configs/{group}/README.md shows how)"
                    )
                raise ConfigError(f"unknown {group} {name!r}; choose one of: {', '.join(known)}")
            chosen.setdefault(group, []).append(name)
    return chosen


def check_root_required(
    parsed: Sequence[Override], config_name: str | None, chosen: dict[str, list[str]]
) -> None:
    """Refuse a top-level `???` key of the root config that no override sets. Hydra resolves
    its run folder before the job starts, so a `???` it reads fails there with a traceback.
    Skipped when an option with `# @package _global_` is chosen (an experiment may set it)."""
    path = config_dir() / f"{config_name}.yaml"
    if not config_name or not path.is_file():
        return
    try:
        root = OmegaConf.load(path)
    except Exception:  # a broken root config is Hydra's to report
        return
    required = [str(k) for k in root if OmegaConf.is_missing(root, k)]
    if not required:
        return
    defaults = [d for d in root.get("defaults", []) if OmegaConf.is_dict(d)]
    picks = dict(chosen)
    for entry in defaults:
        for group, option in entry.items():
            if isinstance(option, str) and not str(group).startswith(("override ", "hydra")):
                picks.setdefault(str(group), [option])
    for group, options in picks.items():
        for option in options:
            file = config_dir() / group / f"{option}.yaml"
            if file.is_file() and package_of(file.read_text(), group) == "":
                return
    given = {override.key_or_group for override in parsed}
    for key in required:
        if key not in given:
            raise required_value_error(key, root_config=config_name)
