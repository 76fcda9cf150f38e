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

from objectives import checks
from objectives.errors import ConfigError
from objectives.models.gan import GANNetworks
from objectives.models.vae import VAENetwork
from objectives.refusals import first_line
from objectives.run.config import EITHER_SIZE, config_dir, options_sized_by

T = TypeVar("T")

# every size a data module's `dims` can hold (`num_tokens`: the classes a step of sequence
# data, its tokens and the reserved 0, so image classifiers and sequence models never mix)
DIM_KEYS = ("in_features", "out_features", "in_channels", "height", "width", "num_classes",
            "num_tokens", "num_actions", "action_dim", "num_users", "num_items")  # fmt: skip


def call_with_dims(
    factory: Callable[..., T],
    dims: Mapping[str, int],
    group: str = "model",
    kind: str | None = None,
    **kwargs: Any,
) -> T:
    """Call `factory(**kwargs)` plus the sizes from `dims` it accepts and was not given; a
    model that cannot be sized is answered with the models of `kind` the data can size."""
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
    missing = [
        k for k, v in given.items()
        if v is None and k not in fill and k in DIM_KEYS and EITHER_SIZE.get(k) not in fill
    ]  # fmt: skip
    if missing:
        fitting = (
            fitting_models(dims, kind) if group == "model" else options_sized_by(group, list(dims))
        )
        choose = f": {group}={'|'.join(fitting)}" if fitting else ""
        raise ConfigError(
            f"{group} {name} needs {', '.join(missing)}, which the data does not provide "
            f"(it provides {', '.join(dims)}); choose a {group} made for this data{choose}"
        )
    try:
        return factory(**fill, **kwargs)
    except TypeError as err:
        raise ConfigError(f"{group} {name}: {err}") from err


def build_model(
    factory: Callable[..., nn.Module], dims: Mapping[str, int], kind: str | None = None
) -> nn.Module:
    """The network, with its data-dependent sizes filled from `dims`; on image data it must
    read a batch of zeros (`model=linear` reads only flat vectors). With `model.compile=true`
    (a setting of every model config, taken out here: no network takes it) it is then
    compiled in place."""
    factory, compiled = _compile_setting(factory)
    network = call_with_dims(factory, dims, group="model", kind=kind)
    image = tuple(dims[k] for k in ("in_channels", "height", "width") if k in dims)
    if len(image) == 3:
        _check_reads(network, image, dims, kind)
    if compiled:
        compile_in_place(network)
    return network


def _compile_setting(factory: Callable[..., T]) -> tuple[Callable[..., T], bool]:
    """`factory` without its `compile` keyword, and that keyword's value (False if absent)."""
    if not isinstance(factory, functools.partial) or "compile" not in factory.keywords:
        return factory, False
    keywords = dict(factory.keywords)
    wanted = checks.boolean(keywords.pop("compile"), "model.compile")
    return functools.partial(factory.func, *factory.args, **keywords), wanted


# networks a task never calls as a whole: it calls their parts (a GAN's generator and critic,
# a VAE's encode and decode), so compiling their forward would compile nothing it runs
CALLED_BY_PARTS = {GANNetworks: "its generator and critic", VAENetwork: "its encode and decode"}


def compile_in_place(network: nn.Module) -> None:
    """`network.compile()` (torch.compile of its forward, with torch's defaults; parameter
    names, and so checkpoints, stay as they are). torch compiles at the first call: a network
    it cannot compile then stops the run with one `ConfigError` line naming the fix."""
    import torch._functorch.config  # only when compiling
    import torch._inductor.config
    from torch._dynamo.exc import TorchDynamoException, TorchRuntimeError

    name = type(network).__name__
    parts = next((v for k, v in CALLED_BY_PARTS.items() if isinstance(network, k)), None)
    if parts is not None:
        raise ConfigError(
            f"model.compile=true compiles a network's forward, but {name} is run through "
            f"{parts}, never as a whole; set model.compile=false"
        )
    if type(network).__module__.split(".")[0] == "torch":  # model=linear: torch.nn.Linear
        raise ConfigError(
            f"model.compile=true: torch compiles none of its own layers in place ({name} is "
            f"{type(network).__module__}'s), so it would run uncompiled; set model.compile=false"
        )
    # the gradients of single terms (gradient attribution, weighting=grad_ratio|pcgrad) go
    # back through the graph more than once (retain_graph), which donated buffers forbid
    torch._functorch.config.donated_buffer = False
    # random numbers (dropout masks) drawn as eager draws them: a seed gives the same run
    # compiled or not (inductor's own generator draws others)
    torch._inductor.config.fallback_random = True
    try:
        network.compile()
    except RuntimeError as err:  # torch.compile itself refuses (an unsupported Python)
        raise ConfigError(
            f"model.compile=true: torch.compile is not available here ({first_line(err)}); "
            "set model.compile=false"
        ) from err
    # nn.Module.compile keeps the compiled call here; nn.Module.__getstate__ drops it, so a
    # copy of the network (copy.deepcopy) is an uncompiled network of its own
    compiled = network._compiled_call_impl

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return compiled(*args, **kwargs)
        except TorchRuntimeError:  # the network's own error, met while tracing: as eager
            raise
        except TorchDynamoException as err:
            inner = getattr(err, "inner_exception", None)  # what the backend raised
            reason = f"{type(inner).__name__}: {first_line(inner)}" if inner else first_line(err)
            fix = "set model.compile=false to run it uncompiled"
            if "C++ compiler" in reason:
                fix = "install a C++ compiler (g++; or name one in CXX), or " + fix
            raise ConfigError(
                f"model.compile=true: torch.compile cannot compile {name} here ({reason}); {fix}"
            ) from err

    network._compiled_call_impl = call


def _check_reads(
    network: nn.Module, shape: tuple[int, ...], dims: Mapping[str, int], kind: str | None
) -> None:
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
            for name in fitting_models(dims, model_kind(network) if kind is None else kind)
            if _option_class("model", name) is not type(network)
        ]
        choose = f": model={'|'.join(fitting)}" if fitting else ""
        raise ConfigError(
            f"model {type(network).__name__} cannot read the data's "
            f"{'×'.join(map(str, shape))} images ({str(err).splitlines()[0]}); "
            f"choose a model made for this data{choose}"
        ) from None
    finally:
        network.train(training)


def model_kind(network: object) -> str | None:
    """The kind of task a network (or network class) is made for (`model_kind`: "vae",
    "flow", "policy", ...); None for a predictor any task of inputs → targets can train."""
    return getattr(network, "model_kind", None)


def fitting_models(dims: Mapping[str, int], kind: str | None) -> list[str]:
    """The model options the data can size that are made for a task of `kind` (a VAE is no
    alternative to a classifier, nor a flow to a VAE)."""
    return [
        name
        for name in options_sized_by("model", list(dims))
        if model_kind(_option_class("model", name)) == kind
    ]


def _option_class(group: str, name: str) -> object:
    """The class an option's `_target_` names, or None."""
    try:
        return get_class(OmegaConf.load(config_dir() / group / f"{name}.yaml")._target_)
    except Exception:
        return None
