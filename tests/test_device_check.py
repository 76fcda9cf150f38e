"""scripts/device_check.sh: harmless where there is no GPU, and its tests are collected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_without_a_cuda_device_it_says_so_and_exits_0(tmp_path: Path) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable,
           "OUT": str(tmp_path)}  # fmt: skip
    run = subprocess.run(
        ["bash", "scripts/device_check.sh"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == (
        "device_check: no CUDA device here (torch.cuda.is_available() is False): nothing to check"
    )
    assert not any(tmp_path.iterdir())  # no report of checks that did not run


def test_the_gpu_marked_tests_are_collected_by_the_test_command() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "gpu", "tests/test_gpu.py"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:]
    collected = [line for line in run.stdout.splitlines() if line.startswith("tests/test_gpu.py::")]
    names = {line.split("::")[1].split("[")[0] for line in collected}
    assert names == {
        "test_a_gpu_run_keeps_network_data_and_sums_on_the_device",
        "test_every_term_in_bf16_mixed_is_close_to_float32",
        "test_closed_form_penalties_give_autograds_gradient_on_the_device",
    }
    assert sum("bf16" in line for line in collected) >= 10  # one a preset
