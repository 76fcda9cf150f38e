"""In a training process torch owns the cores: numpy's and scipy's BLAS run on one thread.

numpy and scipy ship OpenBLAS, which starts a worker thread a core; after each call those
threads spin for a while, waiting for more. A training process makes only small numpy BLAS
calls, in logging (TensorBoard's histogram takes a dot product of the values), but the
spinning threads then take the cores from torch's own threads: on the project's 2-core
CPU, one round of the digits CNN's parameter histograms (8 tensors) slowed the next 100
training steps by 60-80 ms, 25 %. With OpenBLAS on one thread the same histograms cost
3 ms and nothing after, and their values are the same. torch's thread pools (its
statically linked MKL, OpenMP) are not touched.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def keep_cores_for_torch() -> None:
    """One thread for every BLAS library loaded so far (numpy's, scipy's OpenBLAS)."""
    threadpool_limits(limits=1, user_api="blas")
