"""Our RealNVP beside zuko's (scripts/flow_vs_zuko.py) on a density both can fit exactly: a
2-D Gaussian with a full covariance, which one affine coupling pair represents. Given the
same rows, size, steps and learning rate, both reach the generating density's NLL, so they
agree with each other (the ring's comparison, where a single seed moves either flow by
±0.1 nats, is the script's, by means over seeds: docs/tasks/flow.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tests.conftest import load_script

pytest.importorskip("zuko")


@pytest.mark.slow
def test_ours_and_zukos_realnvp_reach_the_gaussians_density_alike(tmp_path: Path) -> None:
    script = load_script("flow_vs_zuko")
    args = argparse.Namespace(experiment="gaussian2d_flow", epochs=40, layers=4, hidden=[32, 32],
                              lr=0.003, threads=1)  # fmt: skip
    ours = script.ours(args, tmp_path, "realnvp", seed=0)
    theirs = script.theirs(args, tmp_path, seed=0)
    assert ours["true"] == pytest.approx(theirs["true"], abs=1e-6)  # the very same test rows
    assert abs(ours["nll"] - theirs["nll"]) <= 0.02, (ours, theirs)
    for fit in (ours, theirs):
        assert abs(fit["nll"] - fit["true"]) <= 0.02, fit
