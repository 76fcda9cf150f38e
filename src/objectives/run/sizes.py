"""Build a network (or a task) whose sizes come from the data, not from its config.

Model configs are `_partial_` factories that leave data-dependent sizes as `null`
(e.g. `in_features: null`); `call_with_dims` fills those, and any other argument the
factory accepts by a `dims` name (a task's `num_classes`), from the data module's
`dims`. A size the user set explicitly is kept, and a clash with the data is reported.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from hydra.utils import get_class
from omegaconf import OmegaConf
from torch import nn

from objectives.errors import ConfigError
from objectives.models.vae import VAENetwork
from objectives.run.config import config_dir, options_sized_by

T = TypeVar("T")

# every size a data module's `dims` can hold (`num_tokens`: the classes a step of sequence
# data, its tokens and the reserved 0, so image classifiers and sequence models never mix)
DIM_KEYS = ("in_features", "out_features", "in_channels", "height", "width", "num_classes",
            "num_tokens")  # fmt: skip


def call_with_dims(
    factory: Callable[..., T], dims: Mapping[str, int], group: str = "model", **kwargs: Any
) -> T:
    """Call `factory(**kwargs)` plus the sizes from `dims` it accepts and was not given."""
    given = dict(factory.keywords) if isinstance(factory, functools.partial) else {}
    target = factory.func if isinstance(factory, functools.partial) else factory
    name = getattr(target, "__name__", str(target))
    accepted = inspect.signature(target).parameters
    fill = {}
    for key, value in dims.items():
        if key not in accepted or key in kwargs:
            continue
        if given.get(key) is None:
            fill[key] = value
        elif given[key] != value:
            raise ConfigError(
                f"{group}.{key}={given[key]} but the data has {key}={value}; "
                f"remove {group}.{key} (it is read from the data)"
            )
    # a size left null that the data does not give (other null settings are the factory's)
    missing = [k for k, v in given.items() if v is None and k not in fill and k in DIM_KEYS]
    if missing:
        fitting = options_sized_by(group, list(dims))
        choose = f": {group}={'|'.join(fitting)}" if fitting else ""
        raise ConfigError(
            f"{group} {name} needs {', '.join(missing)}, which the data does not provide "
            f"(it provides {', '.join(dims)}); choose a {group} made for this data{choose}"
        )
    try:
        return factory(**fill, **kwargs)
    except TypeError as err:
        raise ConfigError(f"{group} {name}: {err}") from err


def build_model(factory: Callable[..., nn.Module], dims: Mapping[str, int]) -> nn.Module:
    """The network, with its data-dependent sizes filled from `dims`; on image data it must
    read a batch of zeros (`model=linear` reads only flat vectors)."""
    network = call_with_dims(factory, dims, group="model")
    image = tuple(dims[k] for k in ("in_channels", "height", "width") if k in dims)
    if len(image) == 3:
        _check_reads(network, image, dims)
    return network


def _check_reads(network: nn.Module, shape: tuple[int, ...], dims: Mapping[str, int]) -> None:
    """Run `network` once (eval mode, no grad: no state changes) on zeros of the data's
    input shape, so a network that cannot read them fails now with one line."""
    training = network.training
    network.eval()
    try:
        with torch.no_grad():
            network(torch.zeros(2, *shape))
    except RuntimeError as err:
        fitting = [
            name
            for name in options_sized_by("model", list(dims))
            if _option_class("model", name) is not type(network)
            and _is_vae(_option_class("model", name)) == isinstance(network, VAENetwork)
        ]
        choose = f": model={'|'.join(fitting)}" if fitting else ""
        raise ConfigError(
            f"model {type(network).__name__} cannot read the data's "
            f"{'×'.join(map(str, shape))} images ({str(err).splitlines()[0]}); "
            f"choose a model made for this data{choose}"
        ) from None
    finally:
        network.train(training)


def _is_vae(cls: object) -> bool:
    """A VAE network (task=vae) is no alternative to a predictor, nor the reverse."""
    return isinstance(cls, type) and issubclass(cls, VAENetwork)


def _option_class(group: str, name: str) -> object:
    """The class an option's `_target_` names, or None."""
    try:
        return get_class(OmegaConf.load(config_dir() / group / f"{name}.yaml")._target_)
    except Exception:
        return None
