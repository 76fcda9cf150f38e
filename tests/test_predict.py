"""predict.py on every task: what it writes, read back, against the trained model itself
run by hand on the same inputs (scaled by the checkpoint's saved statistics), and the
one-line refusals of inputs it cannot read, which leave no folder behind."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from objectives.run.checkpoints import load_checkpoint
from objectives.run.evaluate import main as eval_main
from objectives.run.predict import main as predict_main
from objectives.run.restore import restore
from objectives.run.train import main as train_main
from tests.commands import run_command
from tests.image_files import write_folder

QUIET = ["trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
         "trainer.enable_model_summary=false", "test=false"]  # fmt: skip
SHORT = ["trainer.max_epochs=1", "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=1"]


def train(logs: Path, *args: str) -> Path:
    """The last checkpoint of a finished run of `train.py <args>`."""
    done = run_command(train_main, *args, *QUIET, f"paths.log_dir={logs}")
    assert done.status == 0, done.output[-3000:]
    (last,) = logs.glob("*/runs/*/checkpoints/last.ckpt")
    return last


def predict(logs: Path, ckpt: Path, *args: str) -> list[dict[str, str]]:
    """The rows of predictions.csv written by `predict.py ckpt_path=<ckpt> <args>`."""
    before = set(logs.glob("predict/runs/*"))
    done = run_command(predict_main, f"ckpt_path={ckpt}", *args,
                       "trainer.enable_progress_bar=false", f"paths.log_dir={logs}",
                       prog="predict.py")  # fmt: skip
    assert done.status == 0, done.output[-3000:]
    (folder,) = set(logs.glob("predict/runs/*")) - before
    assert "Predicted" in done.output
    with (folder / "predictions.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def refused(logs: Path, ckpt: Path | str, *args: str) -> str:
    """The one error line of a refused prediction, which leaves no run folder."""
    before = set(logs.glob("predict/runs/*"))
    done = run_command(predict_main, f"ckpt_path={ckpt}", *args,
                       "trainer.enable_progress_bar=false", f"paths.log_dir={logs}",
                       prog="predict.py")  # fmt: skip
    assert done.one_line_error, done.output[-3000:]
    assert set(logs.glob("predict/runs/*")) == before  # nothing half-written
    return done.errors[0]


def write_csv(path: Path, header: list[str], rows: np.ndarray) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows.tolist())
    return path


def save_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


# -- regression on the user's CSV ----------------------------------------------------------
@pytest.fixture(scope="module")
def house(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """A regression trained on a CSV with scaled inputs and a scaled target, far from 0."""
    folder = tmp_path_factory.mktemp("house")
    rng = np.random.default_rng(0)
    x = rng.normal([50, 3, -7], [10, 1, 2], size=(120, 3))
    y = 1000 + 20 * x[:, :1] - 50 * x[:, 1:2] + rng.normal(0, 5, (120, 1))
    data = write_csv(folder / "house.csv", ["area", "rooms", "age", "price"], np.hstack([x, y]))
    ckpt = train(folder / "logs", "data=csv", f"data.path={data}", "data.target=price",
                 "data.standardize_target=true", "model=mlp", "trainer.max_epochs=3")  # fmt: skip
    return folder, ckpt, x


def by_hand(ckpt: Path, x: np.ndarray) -> np.ndarray:
    """The trained network on raw rows, scaled and unscaled by the data module's own saved
    statistics (not predict.py's recipe)."""
    stats = load_checkpoint(ckpt)["InMemoryDataModule"]
    module = restore(str(ckpt)).module
    inputs = (torch.tensor(x, dtype=torch.float32) - torch.tensor(stats["x_mean"])) / torch.tensor(
        stats["x_std"]
    )
    with torch.no_grad():
        pred = module.model(inputs)
    return (pred * torch.tensor(stats["y_std"]) + torch.tensor(stats["y_mean"])).numpy()


def test_regression_rows_come_back_in_the_targets_units(house) -> None:
    folder, ckpt, x = house
    rows = predict(folder / "logs", ckpt, f"input={folder / 'house.csv'}", "batch_size=7")
    assert [r["line"] for r in rows] == [str(i) for i in range(2, 122)]
    got = np.array([float(r["price"]) for r in rows])
    expected = by_hand(ckpt, x)[:, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)
    assert 1000 < got.mean() < 2700  # the price's units (mean 1850), not scaled ones (about 0)


def test_a_csv_without_the_target_and_in_another_column_order_is_read(house) -> None:
    folder, ckpt, x = house
    path = write_csv(folder / "new.csv", ["age", "area", "rooms"], x[:5][:, [2, 0, 1]])
    rows = predict(folder / "logs", ckpt, f"input={path}")
    np.testing.assert_allclose([float(r["price"]) for r in rows], by_hand(ckpt, x[:5])[:, 0],
                               rtol=1e-5, atol=1e-3)  # fmt: skip


@pytest.mark.parametrize(
    ("header", "said"),
    [
        (["area", "rooms"], "lacks the feature column(s) age; add them"),
        (["area", "rooms", "age", "id"], "the model does not read: id; remove them"),
        (["area", "rooms", "years"], "lacks the feature column(s) age and has column(s) the "
                                     "model does not read: years; rename them"),
    ],
)  # fmt: skip
def test_missing_extra_and_renamed_columns_are_named(house, header, said) -> None:
    folder, ckpt, _ = house
    path = write_csv(folder / "bad.csv", header, np.ones((2, len(header))))
    line = refused(folder / "logs", ckpt, f"input={path}")
    assert said in line and "the model reads area, rooms, age" in line


def test_a_bad_cell_is_named_by_line_and_column_and_no_file_is_left(house) -> None:
    folder, ckpt, _ = house
    path = folder / "cells.csv"
    rows = ["area,rooms,age"] + ["50,3,-7"] * 300 + ["50,three,-7"]
    path.write_text("\n".join(rows) + "\n")
    line = refused(folder / "logs", ckpt, f"input={path}", "batch_size=16")
    assert "line 302, column rooms: not a number ('three')" in line


def test_checkpoint_errors_are_one_line(house, tmp_path: Path) -> None:
    folder, ckpt, _ = house
    logs = folder / "logs"
    assert "does not exist" in refused(logs, tmp_path / "none.ckpt", "input=x.csv")
    plain = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {}}, plain)
    assert "has no saved config (run_config)" in refused(logs, plain, "input=x.csv")
    assert "input= is required: a CSV file with the columns area, rooms, age" in refused(logs, ckpt)
    assert "no such file" in refused(logs, ckpt, f"input={tmp_path / 'missing.csv'}")


# -- classification on image files ---------------------------------------------------------
@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, Path]:
    """A CNN trained on an image folder that comes split into train/ and test/."""
    folder = tmp_path_factory.mktemp("photos")
    root = write_folder(folder / "data", classes=3, per_class=10, splits=("train", "test"))
    ckpt = train(folder / "logs", "task=classification", "data=image_folder",
                 f"data.root={root}", "model=cnn", "model.channels=[4]", "model.hidden=8",
                 "loss=cross_entropy", "data.batch_size=6", "data.num_workers=0",
                 "trainer.max_epochs=3")  # fmt: skip
    return folder, ckpt


def test_classes_equal_the_models_on_the_test_split_and_evals_accuracy(photos) -> None:
    folder, ckpt = photos
    logs = folder / "logs"
    rows = predict(logs, ckpt, f"input={folder / 'data' / 'test'}", "batch_size=4",
                   "num_workers=1")  # fmt: skip
    # the checkpoint's own data module (normalised on the device as in training), by hand
    restored = restore(str(ckpt))
    from hydra.utils import instantiate

    datamodule = instantiate(restored.config.data, num_workers=0)
    datamodule.load_state_dict(load_checkpoint(ckpt)["FileDataModule"])
    datamodule.setup("test")
    names = [str(p) for p in datamodule._load()["test"].source.files]  # relative to test/
    expected = {}
    with torch.no_grad():
        offset = 0
        for batch in datamodule.test_dataloader():
            images, labels = datamodule.on_after_batch_transfer(batch[:2], 0)
            for k, cls in enumerate(restored.module.model(images).argmax(-1).tolist()):
                expected[names[offset + k]] = cls
            offset += len(labels)
    got = {r["file"]: int(r["class_id"]) for r in rows}
    assert got == expected
    assert all(r["class"] == f"class_{r['class_id']}" for r in rows)
    probs = np.array([[float(r[f"p_class_{c}"]) for c in range(3)] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)

    accuracy = np.mean([r["file"].split("/")[0] == r["class"] for r in rows])
    evaluated = run_command(eval_main, f"ckpt_path={ckpt}", "trainer.enable_progress_bar=false",
                            f"paths.log_dir={logs}", prog="eval.py")  # fmt: skip
    assert evaluated.status == 0, evaluated.output[-2000:]
    assert f"acc {accuracy:.4g}" in evaluated.output


def test_image_errors_and_conversions(photos, tmp_path: Path) -> None:
    folder, ckpt = photos
    logs = folder / "logs"
    pixels = np.asarray(Image.open(next((folder / "data" / "test" / "class_1").iterdir())))
    # a grey copy of an RGB-trained model's image is converted as training converted
    save_png(tmp_path / "flat" / "grey.png", pixels[:, :, 0])
    save_png(tmp_path / "flat" / "rgb.png", pixels)
    rows = predict(logs, ckpt, f"input={tmp_path / 'flat'}")
    assert [r["file"] for r in rows] == ["grey.png", "rgb.png"]
    # another size: training did not resize, so it is refused, naming the file and the fix
    save_png(tmp_path / "big" / "big.png", np.zeros((16, 12, 3)))
    line = refused(logs, ckpt, f"input={tmp_path / 'big'}")
    assert "big.png is 12×16, but the model was trained on 8×8 images" in line
    assert "resize it to 8×8" in line
    (tmp_path / "empty").mkdir()
    assert "no image files in the folder" in refused(logs, ckpt, f"input={tmp_path / 'empty'}")
    broken = tmp_path / "broken"
    save_png(broken / "a.png", pixels)
    (broken / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for workers in (0, 2):
        line = refused(logs, ckpt, f"input={broken}", f"num_workers={workers}")
        assert "b.png: not a readable image" in line


def test_a_classifier_trained_in_memory_reads_png_files(tmp_path: Path) -> None:
    """digits (scikit-learn's arrays in [0, 1]) and its images as 8-bit PNG files: the
    same classes as the network on the arrays, where quantising to 8 bits moves no logit
    across another."""
    from sklearn.datasets import load_digits

    logs = tmp_path / "logs"
    ckpt = train(logs, "experiment=digits_cnn", *SHORT)
    x, _ = load_digits(return_X_y=True)
    for i in range(12):
        save_png(tmp_path / "digits" / f"{i:02d}.png", (x[i].reshape(8, 8) * 255 / 16).round())
    rows = predict(logs, ckpt, f"input={tmp_path / 'digits'}")
    module = restore(str(ckpt)).module
    with torch.no_grad():
        quantised = torch.tensor((x[:12] * 255 / 16).round() / 255, dtype=torch.float32)
        expected = module.model(quantised.reshape(-1, 1, 8, 8)).argmax(-1).tolist()
    assert [int(r["class_id"]) for r in rows] == expected


# -- representation, VAE, sequences, samples -----------------------------------------------
def digit_pngs(folder: Path, count: int = 6) -> tuple[Path, torch.Tensor]:
    """The first `count` digits as PNG files, and the images the network then sees."""
    from sklearn.datasets import load_digits

    x, _ = load_digits(return_X_y=True)
    pixels = (x[:count] * 255 / 16).round()
    for i in range(count):
        save_png(folder / f"{i:02d}.png", pixels[i].reshape(8, 8))
    return folder, torch.tensor(pixels / 255, dtype=torch.float32).reshape(-1, 1, 8, 8)


def test_contrastive_writes_the_encoders_representation(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    ckpt = train(logs, "experiment=digits_simclr", *SHORT)
    folder, images = digit_pngs(tmp_path / "digits")
    rows = predict(logs, ckpt, f"input={folder}")
    module = restore(str(ckpt)).module
    with torch.no_grad():
        expected = module.model.encoder(images).numpy()
    got = np.array([[float(r[f"z{i}"]) for i in range(expected.shape[1])] for r in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_vae_writes_the_latent_mean_and_a_seeded_elbo(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    ckpt = train(logs, "experiment=digits_vae", *SHORT)
    folder, images = digit_pngs(tmp_path / "digits")
    rows = predict(logs, ckpt, f"input={folder}", "seed=3")
    again = predict(logs, ckpt, f"input={folder}", "seed=3")
    module = restore(str(ckpt)).module
    with torch.no_grad():
        mu, logvar = module.model.encode(images)
        torch.manual_seed(0)
        elbo = module.log_weights(images, mu, logvar, k=4000).mean(1)  # many draws
    got_mu = np.array([[float(r[f"mu{i}"]) for i in range(mu.shape[1])] for r in rows])
    np.testing.assert_allclose(got_mu, mu.numpy(), rtol=1e-5, atol=1e-6)
    got_elbo = np.array([float(r["elbo"]) for r in rows])
    # the mean of iw_samples draws of log w: within a few standard errors of many draws'
    assert np.all(np.abs(got_elbo - elbo.numpy()) < 3.0), (got_elbo, elbo)
    assert [r["elbo"] for r in rows] == [r["elbo"] for r in again]  # seeded


def test_ctc_reads_strips_of_any_width(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    ckpt = train(logs, "experiment=digit_strings_ctc", "trainer.max_epochs=1",
                 "+trainer.limit_train_batches=40", "+trainer.limit_val_batches=1")  # fmt: skip
    from sklearn.datasets import load_digits

    x, _ = load_digits(return_X_y=True)
    digits = (x.reshape(-1, 8, 8) * 255 / 16).round()
    save_png(tmp_path / "strips" / "a.png", np.concatenate(digits[:3], axis=1))
    save_png(tmp_path / "strips" / "b.png", np.concatenate(digits[3:8], axis=1))
    rows = predict(logs, ckpt, f"input={tmp_path / 'strips'}")
    module = restore(str(ckpt)).module
    from objectives.metrics.sequence import ctc_greedy_decode

    for row, strip in zip(rows, (digits[:3], digits[3:8]), strict=True):
        image = torch.tensor(np.concatenate(strip, axis=1) / 255, dtype=torch.float32)
        with torch.no_grad():
            logits, steps = module.model(image[None, None], torch.tensor([image.shape[1]]))
        decoded = ctc_greedy_decode(logits, steps)[0].tolist()
        assert row["text"] == "".join(str(t - 1) for t in decoded if t > 0)
    line = refused(logs, ckpt, f"input={save_png(tmp_path / 'tall.png', np.zeros((9, 16)))}")
    assert "9 pixels high, but the model reads strips 8 high" in line


def test_language_model_continues_prompts_reproducibly(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    ckpt = train(logs, "experiment=markov_lm", *SHORT)
    rows = predict(logs, ckpt, "prompt=['1 2 3','4']", "length=6", "temperature=0")
    module = restore(str(ckpt)).module
    for row, prompt in zip(rows, ([1, 2, 3], [4]), strict=True):
        tokens = list(prompt)
        with torch.no_grad():
            for _ in range(6):  # greedy, one token at a time, never the padding id 0
                logits, _ = module.model(torch.tensor([tokens]))
                tokens.append(int(logits[0, -1, 1:].argmax()) + 1)
        assert row["text"] == " ".join(map(str, tokens[len(prompt) :]))
    sampled = [predict(logs, ckpt, "prompt='5 5'", "length=8", "seed=1")[0]["text"]
               for _ in range(2)]  # fmt: skip
    assert sampled[0] == sampled[1] and len(sampled[0].split()) == 8
    assert "token id 99 is not one of the model's 1..8" in refused(logs, ckpt, "prompt='1 99'")
    assert "give prompt=" in refused(logs, ckpt)


def test_gan_draws_seeded_samples_as_rows_or_images(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    ckpt = train(logs, "experiment=ring_gan", *SHORT)
    rows = predict(logs, ckpt, "n=5", "seed=7", "batch_size=2")
    module = restore(str(ckpt)).module
    noise = torch.randn(5, module.model.noise_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = module.generator()(noise).numpy()
    got = np.array([[float(r["x0"]), float(r["x1"])] for r in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert "reads no input" in refused(logs, ckpt, "input=x.csv")

    images = tmp_path / "images"
    ckpt = train(images, "experiment=digits_gan", *SHORT)
    rows = predict(images, ckpt, "n=3")
    (folder,) = images.glob("predict/runs/*")
    assert [r["file"] for r in rows] == [f"samples/00000{i}.png" for i in range(3)]
    assert Image.open(folder / rows[0]["file"]).size == (8, 8)


@pytest.mark.slow
def test_memory_stays_flat_on_a_large_csv(house, tmp_path: Path) -> None:
    """A 50× larger input costs predict.py no more memory: rows are read, predicted and
    written a batch at a time (peak resident set of the child process, from wait4)."""
    import os
    import subprocess
    import sys

    _, ckpt, _ = house
    rng = np.random.default_rng(1)
    peaks = {}
    for rows in (4_000, 1_000_000):
        path = tmp_path / f"rows_{rows}.csv"
        np.savetxt(path, rng.normal([50, 3, -7], [10, 1, 2], (rows, 3)), delimiter=",",
                   header="area,rooms,age", comments="", fmt="%.5f")  # fmt: skip
        child = subprocess.Popen(
            [sys.executable, "predict.py", f"ckpt_path={ckpt}", f"input={path}",
             f"paths.log_dir={tmp_path / 'logs'}", "trainer.enable_progress_bar=false",
             "batch_size=1024", "torch_threads=1"],
            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
        assert status == 0, child.stderr.read().decode()[-2000:]
        peaks[rows] = usage.ru_maxrss / 1024  # MiB
    (out,) = [p for p in (tmp_path / "logs").glob("predict/runs/*") if
              sum(1 for _ in (p / "predictions.csv").open()) == 1_000_001]  # fmt: skip
    # held whole, the rows would take over 100 MiB as Python lists (measured: +18 MiB for
    # 250× the rows, the allocator's arenas, not rows kept: tracemalloc finds none)
    assert peaks[1_000_000] - peaks[4_000] < 40, peaks
    assert out.is_dir()


def test_the_training_data_is_not_needed_and_older_checkpoints_use_it(house, tmp_path) -> None:
    """The checkpoint's saved sizes and input recipe rebuild the model where its training
    CSV is not; a checkpoint without them (written before they were kept) is rebuilt from
    its training data, and refused in one line when that is gone."""
    folder, ckpt, x = house
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["run_config"]["data"]["path"] = str(tmp_path / "moved.csv")
    torch.save(checkpoint, elsewhere := tmp_path / "elsewhere.ckpt")
    new = write_csv(tmp_path / "new.csv", ["area", "rooms", "age"], x[:4])
    rows = predict(folder / "logs", elsewhere, f"input={new}")
    np.testing.assert_allclose([float(r["price"]) for r in rows], by_hand(ckpt, x[:4])[:, 0],
                               rtol=1e-5, atol=1e-3)  # fmt: skip

    older = {k: v for k, v in torch.load(ckpt, weights_only=True).items()
             if k not in ("dims", "inputs")}  # fmt: skip
    torch.save(older, old := tmp_path / "old.ckpt")
    assert [r["price"] for r in predict(folder / "logs", old, f"input={new}")] == [
        r["price"] for r in rows
    ]
    older["run_config"]["data"]["path"] = str(tmp_path / "moved.csv")
    torch.save(older, old)
    assert "moved.csv: no such file" in refused(folder / "logs", old, f"input={new}")


def test_help_lists_the_keys() -> None:
    done = run_command(predict_main, "--help", prog="predict.py")
    assert done.status == 0
    assert "predict.py: run a checkpoint's model on new inputs" in done.output
    assert all(key in done.output for key in ("ckpt_path", "input", "prompt", "batch_size"))


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_a_policy_writes_its_deterministic_action_and_value(tmp_path: Path, env: str) -> None:
    """Observations in a CSV (x0, x1, ...): the greedy action (discrete: every action's
    probability and the most probable, as `class`) and V(s), as the network gives them."""
    logs = tmp_path / "logs"
    ckpt = train(logs, "experiment=cartpole_ppo", f"rl.env={env}", "rl.n_envs=2",
                 "rl.n_steps=16", "rl.batch_size=16", "rl.rollouts_per_epoch=1",
                 "rl.update_epochs=1", "rl.eval_episodes=1", "rl.max_episode_steps=20",
                 "trainer.max_epochs=1")  # fmt: skip
    module = restore(str(ckpt)).module
    width = module.model.policy_trunk[1].in_features
    observations = np.random.default_rng(0).normal(size=(5, width)).astype(np.float32)
    path = write_csv(tmp_path / "obs.csv", [f"x{i}" for i in range(width)], observations)
    rows = predict(logs, ckpt, f"input={path}")
    with torch.no_grad():
        params, value = module.model(torch.from_numpy(observations))
    np.testing.assert_allclose([float(r["value"]) for r in rows], value.numpy(), rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    if env == "CartPole-v1":
        probs = params.softmax(-1).numpy()
        assert [int(r["class_id"]) for r in rows] == probs.argmax(-1).tolist()
        np.testing.assert_allclose([[float(r["p_0"]), float(r["p_1"])] for r in rows], probs,
                                   rtol=1e-5, atol=1e-7)  # fmt: skip
    else:  # the Gaussian's mean, one column an action dimension
        np.testing.assert_allclose([float(r["action0"]) for r in rows], params[:, 0].numpy(),
                                   rtol=1e-5, atol=1e-6)  # fmt: skip


def test_a_policy_on_discrete_states_is_refused_with_the_reason(tmp_path: Path) -> None:
    """FrozenLake's observations are state numbers (the policy reads them one-hot): no CSV of
    vectors describes them, and the refusal says so (not "retrain")."""
    logs = tmp_path / "logs"
    ckpt = train(logs, "experiment=cartpole_ppo", "rl.env=FrozenLake-v1", "rl.n_envs=2",
                 "rl.n_steps=16", "rl.batch_size=16", "rl.rollouts_per_epoch=1",
                 "rl.update_epochs=1", "rl.eval_episodes=1", "rl.max_episode_steps=20",
                 "trainer.max_epochs=1")  # fmt: skip
    path = write_csv(tmp_path / "obs.csv", ["x0"], np.zeros((2, 1), dtype=np.float32))
    message = refused(logs, ckpt, f"input={path}")
    assert "FrozenLake-v1's observations are discrete states (one-hot)" in message
    assert "retrain" not in message


def test_a_flow_writes_each_rows_log_density_and_code(tmp_path: Path) -> None:
    """log p(x) = log N(f(x); 0, I) + log|det ∂f/∂x|, by hand from the network, and z = f(x)."""
    logs = tmp_path / "logs"
    ckpt = train(logs, "experiment=gaussian2d_flow", "trainer.max_epochs=2")
    x = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    rows = predict(logs, ckpt, f"input={write_csv(tmp_path / 'x.csv', ['x0', 'x1'], x)}")
    network = restore(str(ckpt)).module.model
    with torch.no_grad():
        z, log_det = network(torch.from_numpy(x))
    prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    np.testing.assert_allclose([float(r["log_prob"]) for r in rows], (prior + log_det).numpy(),
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    np.testing.assert_allclose([[float(r["z0"]), float(r["z1"])] for r in rows], z.numpy(),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
