"""Where the Hydra config tree lives, and what each config group offers.

The configs are the top-level `configs/` folder of the repository (the package is
installed in editable mode), or the folder named by `OBJECTIVES_CONFIG_DIR`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import Container, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

from objectives.errors import ConfigError


def config_dir() -> Path:
    override = os.environ.get("OBJECTIVES_CONFIG_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[3] / "configs"


def group_options(group: str) -> list[str]:
    """The option names of a config group: the YAML files in its folder."""
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def player_parts(node: object) -> dict[str, DictConfig]:
    """A loss node's one part a player (`gan_hinge.disc`, `gan_hinge.gen`); {} for a loss
    of a one-objective task."""
    if not isinstance(node, DictConfig):
        return {}
    return {str(k): v for k, v in node.items() if isinstance(v, DictConfig) and "fn" in v}


def options_that_fit(group: str, produces: Sequence[str], players: Sequence[str] = ()) -> list[str]:
    """Options of a term group (`loss`, `regularizer`) whose `reads` a task produces. A loss
    with one node a player (GAN) fits only a task with exactly those players."""
    fitting = []
    for name in group_options(group):
        path = config_dir() / group / f"{name}.yaml"
        node = OmegaConf.load(path)
        if package_of(path.read_text(), group) == group:  # a file of several named terms
            if players:  # (loss=token_ce and its smoothing part): none a player's
                continue
            parts = list(player_parts(node).values())
        else:
            parts_by_player = player_parts(node)
            if set(parts_by_player) != set(players):
                continue
            parts = list(parts_by_player.values()) or [node]
        if all(key in produces for part in parts for key in part.get("reads", [])):
            fitting.append(name)
    return fitting


# sizes of which a network needs one or the other: a policy acts in a discrete action space
# (`num_actions`) or a continuous one (`action_dim`)
EITHER_SIZE = {"num_actions": "action_dim", "action_dim": "num_actions"}


def options_sized_by(group: str, dims: Sequence[str]) -> list[str]:
    """Options of a sized group (`model`, `task`) whose data-dependent sizes (the keys its
    file leaves `null`) are all among the `dims` a data set provides (of two alternatives,
    `EITHER_SIZE`, one)."""
    fitting = []
    for name in group_options(group):
        conf = OmegaConf.load(config_dir() / group / f"{name}.yaml")
        if {"generator", "critic"} <= set(conf):  # a GAN's pair of networks: task=gan only
            continue
        sizes = [
            k for k, v in conf.items_ex(resolve=False) if v is None and not str(k).startswith("_")
        ]
        if all(key in dims or EITHER_SIZE.get(key) in dims for key in sizes):
            fitting.append(name)
    return fitting


def missing_keys(cfg: DictConfig) -> list[str]:
    """The keys of `cfg` still `???` (required, never set), in config order.

    Unlike `OmegaConf.missing_keys` this resolves no interpolation, so it also works on a
    config whose `${hydra:...}` values cannot be resolved outside a Hydra run.
    """
    found: list[str] = []

    def walk(node: Container) -> None:
        keys = range(len(node)) if isinstance(node, ListConfig) else list(node.keys())
        for key in keys:
            if OmegaConf.is_missing(node, key):
                found.append(node._get_full_key(key))
                continue
            child = node._get_node(key)
            if isinstance(child, Container):
                walk(child)

    walk(cfg)
    return found


def check_required(cfg: DictConfig) -> None:
    """Raise a one-line ConfigError naming the first required value left `???`."""
    keys = missing_keys(cfg)
    if keys:
        raise required_value_error(keys[0])


def missing_value_error(err: BaseException) -> ConfigError | None:
    """The one-line ConfigError for omegaconf's multi-line MissingMandatoryValue or
    InterpolationToMissingValueError behind `err` (Hydra may wrap them), or None."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, MissingMandatoryValue | InterpolationToMissingValueError):
            # the first line names the `???` key itself, also through an interpolation
            first = str(cause).splitlines()[0] if str(cause) else ""
            match = re.search(r"Missing mandatory value: ([\w.\[\]-]+)", first)
            key = match.group(1) if match else getattr(cause, "full_key", "") or "a value"
            return required_value_error(key)
        cause = cause.__cause__
    return None


def required_value_error(key: str, root_config: str | None = None) -> ConfigError:
    """`data.root is required (it is ??? in configs/data/mnist.yaml); set it on the command
    line, e.g. data.root=<folder>`."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf in {"root", "dir", "folder"} or leaf.endswith(("_dir", "_root")):
        placeholder = "<folder>"
    elif leaf.endswith(("path", "file")):
        placeholder = "<file>"
    else:
        placeholder = "<value>"
    files = files_leaving_missing(key, root_config)
    where = f" (it is ??? in {', '.join(files)})" if files else ""
    return ConfigError(
        f"{key} is required{where}; set it on the command line, e.g. {key}={placeholder}"
    )


def files_leaving_missing(key: str, root_config: str | None = None) -> list[str]:
    """The config files (as `configs/<group>/<option>.yaml`) that leave `key` as `???`: the
    root configs (`root_config` alone when the command's is known) and the options of the
    key's group; only the chosen ones inside a Hydra run, and only a single candidate
    outside one (several could be wrong)."""
    root = config_dir()
    group = key.split(".", 1)[0]
    roots = [root / f"{root_config}.yaml"] if root_config else sorted(root.glob("*.yaml"))
    candidates = [(p, "") for p in roots if p.is_file()]
    candidates += [(p, group) for p in sorted((root / group).glob("*.yaml"))]
    chosen: dict | None = None
    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        chosen = {"": hydra.job.config_name, **dict(hydra.runtime.choices)}
    found = []
    for path, in_group in candidates:
        if chosen is not None and in_group in chosen and chosen[in_group] != path.stem:
            continue
        if _leaves_missing(path, in_group, key):
            found.append(f"{root.name}/{path.relative_to(root).as_posix()}")
    return found if chosen is not None or len(found) == 1 else []


def package_of(text: str, group: str) -> str:
    """Where a config file of `group` ("" for a root config) lands in the composed config:
    its `# @package` header among the leading comments, else the group; "" for `_global_`."""
    header = re.match(r"(?:\s*#[^\n]*\n)*?\s*#\s*@package\s+(\S+)", text)
    package = header.group(1) if header else group.replace("/", ".")
    return "" if package == "_global_" else package


def _leaves_missing(path: Path, group: str, key: str) -> bool:
    """Whether the config file `path` of `group` ("" for a root config) sets `key` to `???`."""
    try:
        text = path.read_text()
        conf = OmegaConf.create(text)
    except Exception:  # an unreadable file is Hydra's to report
        return False
    package = package_of(text, group)
    if package and not key.startswith(package + "."):
        return False
    relative = key[len(package) + 1 :] if package else key
    parent_key, _, leaf = relative.rpartition(".")
    parent = OmegaConf.select(conf, parent_key) if parent_key else conf
    if not isinstance(parent, DictConfig) or leaf not in list(parent):  # `in` skips `???`
        return False
    return OmegaConf.is_missing(parent, leaf)


def plain(node: object) -> object:
    """A config node as resolved Python data; scalars pass through."""
    if isinstance(node, DictConfig | ListConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node
