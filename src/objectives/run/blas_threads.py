"""In a training process torch owns the cores: numpy's and scipy's BLAS run on one thread.

numpy and scipy ship OpenBLAS, which starts a worker thread a core; after each call those
threads spin for a while, waiting for more. A training process makes only small numpy BLAS
calls, in logging (TensorBoard's histogram takes a dot product of the values), but the
spinning threads then take the cores from torch's own threads: on a CPU with few cores, one
round of the digits CNN's parameter histograms (8 tensors) slows the training steps after
it. With OpenBLAS on one thread the same histograms cost less and nothing after, and their
values are the same (docs/benchmarks.md has the figures). torch's thread pools (its
statically linked MKL, OpenMP) are not touched.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def keep_cores_for_torch() -> None:
    """One thread for every BLAS library loaded so far (numpy's, scipy's OpenBLAS)."""
    threadpool_limits(limits=1, user_api="blas")
