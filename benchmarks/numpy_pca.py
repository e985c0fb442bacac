#!/usr/bin/env python3
"""Times NumPy's SVD (the reference PCA) on 256 x 4096 paired differences, seeded, to set
beside bench_vec's BM_PcaDiffTop1_* in the same session.

Run: OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/numpy_pca.py
"""
import os
import statistics
import time

import numpy as np


def time_ms(fn, repeats):
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples), min(samples)


def main():
    rng = np.random.default_rng(42)
    n, d = 256, 4096
    direction = rng.standard_normal(d)
    direction /= np.linalg.norm(direction)
    scale = 1.0 / np.sqrt(1.0 + np.arange(d) / 64.0)
    strength = 4.0 + rng.standard_normal((n, 1))  # bench_vec signal 4
    base = 3.0 * rng.standard_normal((n, d))
    noise = 0.5 * scale * rng.standard_normal((n, d))
    pos = (base + 0.5 * strength * direction + noise).astype(np.float32)
    neg = (base - 0.5 * strength * direction - noise).astype(np.float32)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={threads}, shape {n} x {d}")
    for dtype in (np.float32, np.float64):
        diff = pos.astype(dtype) - neg.astype(dtype)
        median, best = time_ms(lambda: np.linalg.svd(diff, full_matrices=False), repeats=20)
        print(f"np.linalg.svd(diff {np.dtype(dtype).name}, full_matrices=False): "
              f"median {median:.2f} ms, min {best:.2f} ms")
        median, best = time_ms(lambda: np.linalg.eigh(diff @ diff.T), repeats=20)
        print(f"np.linalg.eigh(diff @ diff.T) ({np.dtype(dtype).name}): "
              f"median {median:.2f} ms, min {best:.2f} ms")


if __name__ == "__main__":
    main()
