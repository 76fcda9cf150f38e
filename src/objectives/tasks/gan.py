"""GAN: two players, two objectives, every adversarial loss and penalty a named term.

The discriminator (critic) D minimises its objective over `real_score = D(x)`,
`fake_score = D(G(z))` and the inputs themselves (`real`, `fake`, for gradient penalties);
the generator G minimises its own over `fake_score`. Both are `Objective`s built from the
same config groups as every other task: `loss=gan_hinge` gives each player its part of
the hinge loss, `regularizer=[gradient_penalty]` adds a term to the critic's objective
(`player: disc`). Both are logged through the base class with the player in the tag:
`train/disc/objective`, `train/disc/term/gradient_penalty`, `train/gen/raw/gan_hinge`, ...

Manual optimisation: each batch is one critic step; every `n_critic`-th batch is also a
generator step; each player has its own optimizer and learning rate (TTUR). How good the
generator is, is judged on a fixed noise batch each validation epoch by a `judge` (mode
coverage on the ring, a Fréchet distance on digits) and drawn for TensorBoard.

The judged generator is, by default, the exponential moving average of the generator's
weights (`task.ema_decay`, `task.eval_generator=ema|raw`; generator_average.py): the
validation and test figures, the images, the checkpoint chosen by them and `eval.py` all
judge it, and the other generator's figures are logged beside them
(`val/raw_generator/high_quality`). The players' objectives (`val/gen/objective`, ...)
are those of the raw generator the critic trains against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor, nn

from objectives.checks import number, one_of, positive_int
from objectives.errors import ConfigError
from objectives.objective import Objective
from objectives.tasks.base import ObjectiveModule
from objectives.tasks.generator_average import GeneratorAverage
from objectives.tasks.players import Players
from objectives.tracking import publish


class SampleJudge(Protocol):
    """Scores and draws generated samples (ring coverage, digits FID, ...)."""

    def evaluate(self, samples: Tensor) -> dict[str, Tensor]: ...

    def draw(self, samples: Tensor) -> Any: ...


class GANModule(Players, ObjectiveModule):
    """A generator and a critic (`model=gan_mlp`: `GANNetworks`), one objective each."""

    task_name = "gan"
    model_kind = "gan"
    players = ("gen", "disc")
    default_player = "disc"
    reads_targets = False  # the data's labels (ring modes, digit classes) are not used
    produces = ("real_score", "fake_score", "real", "fake")
    primary_metric = "objective"

    def __init__(
        self,
        model: nn.Module,
        objective: Mapping[str, Objective],
        optimizer: Any = None,
        scheduler: Any = None,
        gen_lr: float = 1e-4,
        disc_lr: float = 4e-4,
        n_critic: int = 1,
        judge: SampleJudge | None = None,
        eval_samples: int = 2500,
        eval_seed: int = 0,
        ema_decay: float | None = 0.999,
        ema_start: int = 0,
        eval_generator: str = "ema",
        **kwargs: Any,
    ) -> None:
        if scheduler is not None:
            raise ConfigError("task gan takes no learning-rate scheduler; use scheduler=none")
        n_critic = positive_int(n_critic, "task.n_critic")
        gen_lr = number(gen_lr, "task.gen_lr", low=0, low_open=True)
        disc_lr = number(disc_lr, "task.disc_lr", low=0, low_open=True)
        for part in ("generator", "critic"):
            if not isinstance(getattr(model, part, None), nn.Module):
                raise ConfigError(
                    "task gan needs a model with a generator and a critic; use model=gan_mlp"
                )
        super().__init__(model, objective, optimizer=optimizer, train_metrics=False, **kwargs)
        self.automatic_optimization = False
        self.gen_lr, self.disc_lr, self.n_critic = float(gen_lr), float(disc_lr), n_critic
        self.judge = judge
        self.eval_samples, self.eval_seed = eval_samples, eval_seed
        self.noise_seed = 0  # the run's seed, read when fitting starts (`_training_noise`)
        self.eval_generator = one_of(eval_generator, "task.eval_generator", ("ema", "raw"))
        if ema_decay is None and self.eval_generator == "ema":
            raise ConfigError(
                "task.eval_generator=ema judges the average generator, but task.ema_decay=null "
                "keeps none; set task.ema_decay=0.999 or task.eval_generator=raw"
            )
        self.generator_average = (
            None if ema_decay is None
            else GeneratorAverage(model.generator, ema_decay, ema_start)
        )  # fmt: skip

    def player_network(self, player: str) -> nn.Module:
        """A critic penalty reads the critic; a generator term the generator."""
        return self.model.critic if player == "disc" else self.model.generator

    def example_outputs(self) -> dict[str, Tensor]:
        noise = self.model.sample_noise(4, generator=torch.Generator().manual_seed(0))
        fake = self.model.generate(noise)
        real = fake.flip(0) + 0.1
        critic = self.model.critic
        return {"real": real, "fake": fake, "real_score": critic(real), "fake_score": critic(fake)}

    # -- the steps ----------------------------------------------------------------------------
    def _training_noise(self, rows: int, device: torch.device, player: str) -> Tensor:
        """This process's share of the noise of the optimizer step's whole batch, drawn from a
        generator seeded by the run's seed, the batch and the player: w processes of batch b
        draw exactly the noise one process draws for w·b, so a multi-device run trains as
        one process on the global batch does (tests/test_ddp_equivalence.py)."""
        world, rank = self.trainer.world_size, self.trainer.global_rank
        batch = self.trainer.fit_loop.epoch_loop.total_batch_idx
        seed = (self.noise_seed * 1_000_003 + 2 * batch + (player == "gen")) % 2**63
        generator = torch.Generator().manual_seed(seed)
        noise = self.model.sample_noise(rows * world, generator=generator, device="cpu")
        return noise[rank * rows : (rank + 1) * rows].to(device)

    def _disc_outputs(self, real: Tensor, noise: Tensor | None = None) -> dict[str, Tensor]:
        if noise is None:  # evaluation: torch's global generator
            noise = self.model.sample_noise(len(real), device=real.device)
        with torch.no_grad():
            fake = self.model.generate(noise)
        critic = self.model.critic
        return {"real": real, "fake": fake, "real_score": critic(real), "fake_score": critic(fake)}

    def _gen_outputs(self, real: Tensor) -> dict[str, Tensor]:
        fake = self.model.generate(self._training_noise(len(real), real.device, "gen"))
        return {"real": real, "fake": fake, "fake_score": self.model.critic(fake)}

    def _step_player(self, player: str, outputs: dict[str, Tensor], optimizer: Any) -> None:
        value = self.objectives[player](outputs, step=self.global_step)
        # both players' values are logged in the same batches (every log_every_n_steps-th)
        batches = self.trainer.fit_loop.epoch_loop.total_batch_idx
        log_step = batches % (self.trainer.log_every_n_steps * self.n_critic) < self.n_critic
        size = len(outputs["real"])
        self.recorder.record(self, value, "train", size, player=player, log_step=log_step)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(value.total)
        average = self.generator_average if player == "gen" else None
        # task.nonfinite=skip: a bad step is undone on the device, the average's update too
        undone = average.tensors() if average is not None else ()
        with self.recorder.guard.undone_if_bad(optimizer, extra=undone):
            optimizer.step()
            if average is not None:
                average.update(self.model.generator)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0]
        gen_optimizer, disc_optimizer = self.optimizers()
        self.toggle_optimizer(disc_optimizer)
        noise = self._training_noise(len(real), real.device, "disc")
        self._step_player("disc", self._disc_outputs(real, noise), disc_optimizer)
        self.untoggle_optimizer(disc_optimizer)
        if (batch_idx + 1) % self.n_critic == 0:
            self.toggle_optimizer(gen_optimizer)
            self._step_player("gen", self._gen_outputs(real), gen_optimizer)
            self.untoggle_optimizer(gen_optimizer)

    def _evaluation_step(self, batch: Any, stage: str) -> None:
        # penalties differentiate the critic's input (they enable grad for that themselves):
        # normal tensors, not inference ones, and no graph for the rest
        with torch.inference_mode(False), torch.no_grad():
            real = batch[0].clone()
            outputs = self._disc_outputs(real)  # what both players read, from one sample
            for player, objective in self.objectives.items():
                value = objective(outputs, step=self.global_step)
                self.recorder.record(self, value, stage, len(real), player)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluation_step(batch, "test")

    # -- judging the generator ----------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.noise_seed = torch.initial_seed()  # the same on every process of a seeded run
        strategy = self.trainer.strategy
        if (
            self.trainer.world_size > 1
            and isinstance(strategy, DDPStrategy)
            and not strategy._ddp_kwargs.get("find_unused_parameters", False)
        ):
            raise ConfigError(
                "task gan steps one player at a time, so each step leaves the other's "
                "parameters unused; under DDP set trainer.strategy=ddp_find_unused_parameters_true"
            )

    def generator(self, which: str | None = None) -> nn.Module:
        """The generator judged (`task.eval_generator`), or the one `which` names."""
        which = which or self.eval_generator
        if which == "ema" and self.generator_average is not None:
            return self.generator_average.module
        return self.model.generator

    def inference_network(self) -> nn.Module:
        """The generator judged (the average one by default): noise to samples."""
        return self.generator()

    def predictions(self, batch: tuple[Tensor, ...], **settings: Any) -> dict[str, Tensor]:
        """Samples of the judged generator from a batch of noise vectors."""
        return {"sample": self.generator()(batch[0])}

    def fixed_samples(self, stage: str = "val", which: str | None = None) -> Tensor:
        """Samples from the same noise at every evaluation, so progress is comparable; the
        test draws other noise than validation (which chose the checkpoint)."""
        seed = self.eval_seed + (stage == "test")
        noise = self.model.sample_noise(
            self.eval_samples, generator=torch.Generator().manual_seed(seed)
        ).to(self.device)
        generator = self.generator(which)
        was_training = generator.training
        generator.eval()
        try:
            with torch.no_grad():
                return generator(noise)
        finally:
            generator.train(was_training)

    def _judge(self, stage: str) -> None:
        if self.judge is None or self.trainer.sanity_checking:
            return
        samples = self.fixed_samples(stage)
        scores = {f"{stage}/{k}": v for k, v in self.judge.evaluate(samples).items()}
        if self.generator_average is not None:  # the other generator's figures beside them
            other = "raw" if self.eval_generator == "ema" else "ema"
            judged = self.judge.evaluate(self.fixed_samples(stage, other))
            scores.update({f"{stage}/{other}_generator/{k}": v for k, v in judged.items()})
        self.log_dict(scores, sync_dist=False)  # the same samples on every process
        if not self.trainer.is_global_zero:
            return
        picture = self.judge.draw(samples)
        if isinstance(picture, Tensor):
            publish.image(self.loggers, f"{stage}/samples", picture, self.global_step)
        else:
            publish.figure(self.loggers, f"{stage}/samples", picture, self.global_step)
        if not isinstance(picture, Tensor):
            import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import

            plt.close(picture)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._judge("val")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._judge("test")

    # -- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise RuntimeError("GANModule was built without an optimizer")
        # a player's weighting parameters (weighting=uncertainty) train with that player
        gen = [*self.model.generator.parameters(), *self.objectives["gen"].parameters()]
        disc = [*self.model.critic.parameters(), *self.objectives["disc"].parameters()]
        return [
            self.optimizer_factory(params=gen, lr=self.gen_lr),
            self.optimizer_factory(params=disc, lr=self.disc_lr),
        ]
