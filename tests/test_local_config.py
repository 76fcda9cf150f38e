"""configs/local/default.yaml: this machine's settings, git-ignored, loaded when it exists
(`- optional local: default` in train.yaml); the command line still wins."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from objectives.run.cli import register_resolvers
from objectives.run.config import config_dir

LOCAL = "# @package _global_\nseed: 7\ntrainer:\n  max_epochs: 3\n"


def composed(configs: Path, *overrides: str):
    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
            return compose("train", overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    """A copy of configs/ without any local settings of this machine."""
    copy = tmp_path / "configs"
    shutil.copytree(config_dir(), copy, ignore=shutil.ignore_patterns("local"))
    return copy


def test_train_composes_without_a_local_file(configs: Path) -> None:
    assert not (configs / "local").exists()
    cfg = composed(configs)
    assert (cfg.seed, cfg.trainer.max_epochs) == (42, 200)


def test_a_local_file_overrides_the_defaults_and_the_command_line_wins(configs: Path) -> None:
    (configs / "local").mkdir()
    (configs / "local" / "default.yaml").write_text(LOCAL)
    cfg = composed(configs)
    assert (cfg.seed, cfg.trainer.max_epochs) == (7, 3)
    assert "local" not in cfg  # `# @package _global_`: its keys land at the root
    cfg = composed(configs, "seed=9", "trainer.max_epochs=5")
    assert (cfg.seed, cfg.trainer.max_epochs) == (9, 5)
    # after the recipe: an experiment's own max_epochs gives way to this machine's
    assert composed(configs, "experiment=digits_cnn").trainer.max_epochs == 3


def test_local_settings_are_git_ignored_but_its_readme_is_not() -> None:
    root = config_dir().parent
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["configs/local/default.yaml", "configs/local/README.md"]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths],
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ignored.stdout.split() == ["configs/local/default.yaml"]
    assert (root / "configs" / "local" / "README.md").is_file()


def test_local_without_a_file_says_to_write_one(configs: Path, monkeypatch) -> None:
    """`local=foo` on a machine with no local file: not an empty "choose one of:" list."""
    from objectives.errors import ConfigError
    from objectives.run import config, overrides

    (configs / "local").mkdir()
    (configs / "local" / "README.md").write_text("how to\n")
    monkeypatch.setattr(config, "config_dir", lambda: configs)
    monkeypatch.setattr(overrides, "config_dir", lambda: configs)
    with pytest.raises(ConfigError) as err:
        overrides.check_group_options([overrides.parse_override("local=foo")])
    assert str(err.value) == (
        "unknown local 'foo': configs/local/ has no option yet; write configs/local/foo.yaml "
        "first (configs/local/README.md shows how)"
    )
