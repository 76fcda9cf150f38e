"""Every option of every config group composes, and builds what it promises."""

from __future__ import annotations

import re

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from objectives.errors import ConfigError
from objectives.objective import build_objective, build_player_objectives
from objectives.run.assemble import assemble, instantiate_all, instantiate_loggers
from objectives.run.config import group_options, options_that_fit
from tests.conftest import config_error_of

GROUPS = [
    "data", "task", "model", "loss", "regularizer", "optimizer", "scheduler",
    "trainer", "logger", "callbacks", "debug", "experiment", "paths", "hydra",
]  # fmt: skip


def all_options() -> list[tuple[str, str]]:
    return [(group, option) for group in GROUPS for option in group_options(group)]


def test_every_group_has_options() -> None:
    assert all(group_options(group) for group in GROUPS)


@pytest.mark.parametrize(("group", "option"), all_options())
def test_every_option_composes(compose_cfg, group: str, option: str) -> None:
    if group in ("paths", "hydra"):
        cfg = compose_cfg()  # single-option groups: composed by the defaults
        assert cfg.paths.log_dir == "logs"
        return
    override = f"{group}=[{option}]" if group == "regularizer" else f"{group}={option}"
    if (group, option) in (("data", "mnist"), ("data", "image_folder"), ("data", "cifar10"),
                           ("data", "cifar100"), ("experiment", "cifar_resnet")):  # fmt: skip
        override += " data.root=/any/folder"  # required: there is no default folder
    if (group, option) == ("data", "csv"):
        override += " data.path=/any/file.csv data.target=y"  # required: no default file
    if (group, option) == ("data", "text_file"):
        override += " data.source.path=/any/book.txt"  # required: no default file
    if group == "loss" and option == "cross_entropy":
        override += " task=regression"  # composes; refused at assembly (see below)
    cfg = compose_cfg(*override.split())
    # every value resolves: no dangling interpolation anywhere but Hydra's own
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


@pytest.mark.parametrize("option", group_options("loss"))
def test_every_loss_builds_a_term_named_after_its_file(compose_cfg, option: str) -> None:
    cfg = compose_cfg(f"loss={option}", "regularizer=[]")
    if set(cfg.loss[option]) >= {"gen", "disc"}:  # an adversarial loss: one term a player
        objectives = build_player_objectives(cfg.loss, {}, ("gen", "disc"), "disc")
        assert {p: o.names for p, o in objectives.items()} == {"gen": [option], "disc": [option]}
    else:  # token_ce also logs its label-smoothing part on its own, as a term of weight 0
        also = {"token_ce": ["label_smoothing"]}.get(option, [])
        assert build_objective(cfg.loss, cfg.get("regularizer")).names == [option, *also]


@pytest.mark.parametrize("option", group_options("regularizer"))
def test_every_regularizer_builds_and_binds(compose_cfg, option: str) -> None:
    cfg = compose_cfg(f"regularizer=[{option}]")
    player = cfg.regularizer[option].get("player")
    if player is not None:  # a GAN critic's penalty: it joins that player's objective
        loss = {"gan_ns": compose_cfg("loss=gan_ns").loss.gan_ns}
        objective = build_player_objectives(loss, cfg.regularizer, ("gen", "disc"), "disc")[player]
        assert objective.bind(torch.nn.Linear(3, 1)).names == ["gan_ns", option]
    else:
        objective = build_objective(cfg.loss, cfg.regularizer).bind(torch.nn.Linear(3, 1))
        assert objective.names == ["mse", option]


def test_regularizers_compose_as_a_list_with_per_term_overrides(compose_cfg) -> None:
    cfg = compose_cfg("regularizer=[l1,l2]", "regularizer.l2.weight=0.01")
    objective = build_objective(cfg.loss, cfg.regularizer)
    assert str(objective) == "J(θ) = 1·mse(ŷ, y) + 0.001·‖θ‖₁ + 0.01·‖θ‖₂²"
    none = build_objective(compose_cfg("regularizer=[]").loss, {})
    assert str(none) == "J(θ) = 1·mse(ŷ, y)"


# Which task and models each data set is for; every data option must be listed.
DATA_USES = {
    "line": ("regression", ["linear", "mlp"]),
    "synthetic": ("regression", ["linear", "mlp"]),
    "diabetes": ("regression", ["linear", "mlp"]),
    "csv": ("regression", ["linear", "mlp"]),
    "noise_levels": ("regression", ["linear", "mlp"]),
    "digits": ("classification", ["mlp", "cnn", "resnet"]),
    "blobs_images": ("classification", ["mlp", "cnn"]),
    "mnist": ("classification", ["mlp", "cnn"]),
    "image_folder": ("classification", ["mlp", "cnn", "resnet"]),
    "cifar10": ("classification", ["cnn", "resnet"]),
    "cifar100": ("classification", ["cnn", "resnet"]),
    "ring": ("gan", ["gan_mlp"]),
    "ppca": ("vae", ["vae_linear", "vae_mlp"]),
    "digit_strings": ("sequence", ["crnn"]),
    "markov_text": ("sequence", ["gru_lm"]),
    "text_file": ("sequence", ["gru_lm"]),
    "gym": ("rl", ["actor_critic"]),
    "tictactoe": ("policy_value", ["actor_critic"]),
    "synthetic_ranking": ("ranking", ["mlp"]),
    "letor": ("ranking", ["mlp"]),
    "synthetic_ratings": ("recommendation", ["matrix_factorization"]),
    "movielens": ("recommendation", ["matrix_factorization"]),
    "digits_captions": ("clip", ["clip_towers"]),
    "gaussian2d": ("flow", ["realnvp", "spline_flow"]),
}
# models made for a task on data listed above for another one (tests/test_vae.py builds it)
OTHER_MODEL_USES = {"vae_conv": ("digits", "vae")}


def test_every_data_option_has_a_use() -> None:
    assert sorted(DATA_USES) == group_options("data")
    used = {m for _, models in DATA_USES.values() for m in models} | set(OTHER_MODEL_USES)
    assert sorted(used) == group_options("model")


def test_settings_for_an_unselected_term_do_not_make_a_term(compose_cfg) -> None:
    """The seed's four-way sweep sets regularizer.l2.weight and then drops l2."""
    cfg = compose_cfg("experiment=seed_regularization", "regularizer=[]")
    assert OmegaConf.to_container(cfg.regularizer) == {"l2": {"weight": 0.01}}
    assert str(build_objective(cfg.loss, cfg.regularizer)) == "J(θ) = 1·CE(logits, y)"
    with pytest.raises(ConfigError, match=r"regularizer\.l2 has no `fn`"):
        build_objective(cfg.loss, {"l2": {"weight": 0.01, "params": "all"}})


@pytest.mark.parametrize("option", group_options("data"))
def test_every_data_option_and_model_assemble(compose_cfg, tmp_path, option: str) -> None:
    task, models = DATA_USES[option]
    task_loss = {"classification": ["loss=cross_entropy"], "gan": ["loss=gan_ns", "regularizer=[]"],
                 "vae": ["loss=[recon_gaussian,kl]", "regularizer=[]"],
                 "sequence": ["loss=token_ce", "regularizer=[]"],
                 "policy_value": ["loss=[policy_ce,value]", "regularizer=[]"],
                 "ranking": ["loss=lambdaloss", "regularizer=[]"],
                 "recommendation": ["loss=[mse,embedding_l2]", "regularizer=[]"],
                 "clip": ["loss=clip", "regularizer=[]"],
                 "flow": ["loss=[prior_nll,log_det]", "regularizer=[]"],
                 "rl": ["loss=[ppo_clip,value,entropy]", "regularizer=[]",
                        "rl.n_steps=8", "rl.batch_size=16"]}  # fmt: skip
    extra = [f"task={task}", *task_loss.get(task, [])]
    if option == "mnist":  # a tiny MNIST-format folder, written here
        from tests.test_idx import arrays, write_folder

        extra.append(f"data.root={write_folder(tmp_path / 'mnist', arrays(40, 10, (8, 8)))}")
        extra.append("data.batch_size=8")
    if option == "image_folder":  # a small folder of PNGs, written here
        from tests.image_files import write_folder as write_images

        extra += [f"data.root={write_images(tmp_path / 'images', per_class=10)}",
                  "data.batch_size=4", "data.num_workers=0"]  # fmt: skip
    if option.startswith("cifar"):  # tiny CIFAR binary files, written here
        from tests import test_cifar

        write = getattr(test_cifar, f"write_{option}_bin")
        extra += [f"data.root={write(tmp_path / option)}", "data.batch_size=4",
                  "data.num_workers=0"]  # fmt: skip
    if option == "csv":  # a small CSV file, written here
        from tests.test_bad_data import regression_csv

        extra += [f"data.path={regression_csv(tmp_path / 'data.csv')}", "data.target=y"]
    if option == "letor":  # a small LETOR/SVMlight file: 10 queries of 2 items
        lines = [f"{r} qid:{q} 1:0.{q} 2:0.{r}\n" for q in range(1, 11) for r in (1, 0)]
        (tmp_path / "train.txt").write_text("".join(lines))
        extra += [f"data.path={tmp_path / 'train.txt'}", "data.batch_size=2"]
    if option == "movielens":  # a small u.data file, written here
        rows = "".join(f"{u}\t{i}\t{1 + (u + i) % 5}\t0\n" for u in range(20) for i in range(10))
        (tmp_path / "u.data").write_text(rows)
        extra += [f"data.path={tmp_path / 'u.data'}", "data.batch_size=16"]
    if option == "text_file":  # a small text file, written here
        (tmp_path / "book.txt").write_text("a small book of sequences\n" * 40)
        extra += [f"data.source.path={tmp_path / 'book.txt'}", "data.source.length=16"]
    for model in models:
        parts = assemble(compose_cfg(f"data={option}", f"model={model}", *extra))
        parts.datamodule.setup("fit")
        if task == "rl":  # the policy being trained collects the batches
            parts.datamodule.attach(parts.module)
            batch = next(iter(parts.datamodule.train_dataloader()))
            logits, value = parts.module.model(batch["obs"])
            assert logits.shape == (16, parts.datamodule.dims["num_actions"])
            assert value.shape == (16,) and batch["actions"].shape == (16,)
            continue
        batch = next(iter(parts.datamodule.train_dataloader()))
        if task == "recommendation":  # dicts of user and item ids with their ratings
            out = parts.module.model(batch["users"], batch["items"])
            assert out.shape == batch["ratings"].shape
            continue
        if task == "ranking":  # query lists: every item scored on its own
            x, relevance, _mask, _query = batch
            assert parts.module.score(x).shape == relevance.shape
            continue
        if task == "policy_value":  # a position: the mover's view, 9 moves and a value
            logits, value = parts.module.model(batch[0])
            assert logits.shape == (len(batch[0]), 9) and value.shape == (len(batch[0]),)
            continue
        batch = parts.datamodule.on_after_batch_transfer(batch, 0)  # file data: uint8 → float
        if task == "sequence":  # inputs, input lengths, targets, the window's token count
            logits, steps = parts.module.model(*batch[:2])
            assert logits.shape[-1] == parts.datamodule.dims["num_tokens"]
            assert (steps <= logits.shape[1]).all()
            continue
        if task == "clip":  # images, labels, caption tokens and lengths: one embedding each
            images, _labels, tokens, lengths = batch
            model = parts.module.model
            assert model(images).shape == model.encode_text(tokens, lengths).shape
            continue
        x, y = batch
        out = parts.module.model(x)
        if task == "regression":
            assert out.shape == y.shape
        elif task == "vae":  # the network decodes the posterior mean: a reconstruction
            assert out.shape == x.shape
        elif task == "flow":  # x ↦ z of the same size, and each row's log|det ∂z/∂x|
            z, log_det = out
            assert z.shape == x.flatten(1).shape and log_det.shape == (len(x),)
        elif task == "gan":  # the critic scores real points; the generator makes new ones
            assert out.shape == (len(x), 1)
            model = parts.module.model
            assert model.generate(model.sample_noise(4)).shape[1:] == x.shape[1:]
        else:
            assert out.shape == (len(y), parts.datamodule.dims["num_classes"])
    if option == "mnist":  # the t10k files are the test split; val comes out of train
        sizes = {k: len(v[1]) for k, v in parts.datamodule.splits.items()}
        assert sizes == {"train": 36, "val": 4, "test": 10}


@pytest.mark.parametrize("option", group_options("optimizer"))
def test_every_optimizer_and_scheduler_instantiate(compose_cfg, option: str) -> None:
    for scheduler in group_options("scheduler"):
        cfg = compose_cfg(f"optimizer={option}", f"scheduler={scheduler}")
        module = assemble(cfg).module
        configured = module.configure_optimizers()
        optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
        assert type(optimizer).__name__.lower() == option.replace("adamw", "adamw")


@pytest.mark.parametrize("option", group_options("logger"))
def test_every_logger_instantiates(compose_cfg, option: str) -> None:
    loggers = instantiate_loggers(compose_cfg(f"logger={option}"))
    expected = {"tensorboard": 1, "csv": 1, "many": 2, "none": 0, "mlflow": 1, "wandb": 1}[option]
    assert len(loggers) == expected


@pytest.mark.parametrize("option", group_options("callbacks"))
def test_every_callbacks_option_instantiates(compose_cfg, option: str) -> None:
    callbacks = instantiate_all(compose_cfg(f"callbacks={option}", fast=False).get("callbacks"))
    assert len(callbacks) == {"default": 11, "none": 0}[option]


@pytest.mark.parametrize("option", group_options("trainer"))
def test_every_trainer_option_composes_to_its_accelerator(compose_cfg, option: str) -> None:
    cfg = compose_cfg(f"trainer={option}")
    expected = {"default": "auto", "cpu": "cpu", "gpu": "gpu", "ddp": "gpu", "ddp_cpu": "cpu",
                "mps": "mps"}[option]  # fmt: skip
    assert cfg.trainer.accelerator == expected
    available = {"gpu": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if available.get(expected, True):  # building a DDP trainer starts no process yet
        trainer = instantiate(cfg.trainer, logger=False)
        assert trainer.max_epochs == cfg.trainer.max_epochs


def test_unknown_option_lists_the_available_ones(compose_cfg) -> None:
    with pytest.raises(ConfigCompositionException) as err:
        compose_cfg("loss=nope")
    message = str(err.value.__cause__ or err.value)
    assert "Could not find 'loss/nope'" in message
    assert all(option in message for option in ("huber", "mse", "quantile"))


def test_a_loss_that_does_not_fit_the_task_stops_at_assembly_naming_what_fits(compose_cfg) -> None:
    with pytest.raises(ConfigError) as err:
        assemble(compose_cfg("loss=cross_entropy"))
    message = str(err.value)
    assert "loss 'cross_entropy' reads logits" in message
    assert "loss=huber|log_cosh|mae|mse|quantile|smooth_l1" in message
    assert options_that_fit("loss", ("pred", "target")) == [
        "huber", "log_cosh", "mae", "mse", "quantile", "smooth_l1",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["regularizer.l2.weight=-1"], r"regularizer\.l2: weight must be a finite number ≥ 0"),
        (["regularizer.l2.weight=abc"], r"regularizer\.l2: weight must be a number ≥ 0, got 'abc'"),
        (["loss.mse.weight=-0.5"], r"loss\.mse: weight must be a finite number ≥ 0"),
        (
            ["loss=quantile", "loss.quantile.fn.q=1.5"],
            r"loss\.quantile\.fn\.q must be a number in \(0, 1\)",
        ),
        (["data.batch_size=0"], "positive integer"),
        (["data.batch_size=1000"], "larger than the 70 training rows"),
        (["model.in_features=3"], "model.in_features=3 but the data has in_features=1"),
        (["model=mlp", "model.hidden=[0]"], "layer sizes must be positive"),
    ],
)
def test_bad_settings_stop_before_training_with_one_line(compose_cfg, overrides, message) -> None:
    text = config_error_of(lambda: assemble(compose_cfg(*overrides)))
    assert re.search(message, text), text


def test_term_functions_are_plain_partials_not_hydras_per_call_checked_ones(compose_cfg) -> None:
    """Hydra's partial subclass re-checks its target on each call (a cost: docs/benchmarks.md)."""
    import functools

    cfg = compose_cfg("loss=log_cosh", "regularizer=[l1,elastic_net]")
    for term in build_objective(cfg.loss, cfg.regularizer).terms:
        assert type(term.fn) is functools.partial, term.name
