"""numpy's BLAS goes to one thread in a training process; torch keeps its threads."""

from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from objectives.run.blas_threads import keep_cores_for_torch


def test_blas_runs_on_one_thread_and_torch_keeps_its_own() -> None:
    np.ones(4).dot(np.ones(4))  # numpy's BLAS is loaded
    torch_threads = torch.get_num_threads()
    with threadpool_limits(limits=None):  # restore whatever this test changes
        keep_cores_for_torch()
        blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert blas, "numpy should bring a BLAS library"
        assert all(lib["num_threads"] == 1 for lib in blas)
        assert torch.get_num_threads() == torch_threads
