"""The same stochastic-rounding quantizer in numpy (reference for
benches/quant.rs): magnitudes onto 2^b levels between min|a| and max|a|,
sign bit, packed to (b + 1) bits per element. Prints GB/s of f32 input.
usage: python3 benches/quant_numpy.py [BITS]"""
import sys
import time

import numpy as np


def quantize_pack(a, bits, rng):
    m = np.abs(a)
    lo, hi = m.min(), m.max()
    delta = (hi - lo) / (2**bits - 1)
    pos = (m - lo) / delta if delta > 0 else np.zeros_like(m)
    k0 = np.floor(pos)
    k = (k0 + (rng.random(a.shape, dtype=np.float32) < (pos - k0))).astype(np.uint32)
    code = (k << 1) | np.signbit(a).astype(np.uint32)
    width = bits + 1
    bitplanes = ((code[:, None] >> np.arange(width, dtype=np.uint32)) & 1).astype(np.uint8)
    return np.concatenate([np.array([lo, hi], dtype=np.float32).view(np.uint8), np.packbits(bitplanes.ravel(), bitorder="little")])


def main():
    bits = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    d = 64 * 49 * 768
    a = (np.sin(np.arange(d, dtype=np.float32) * 0.618034) * 3).astype(np.float32)
    rng = np.random.default_rng(1)
    quantize_pack(a, bits, rng)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < 3.0:
        quantize_pack(a, bits, rng)
        n += 1
    s = (time.perf_counter() - t) / n
    print(f'{{"impl": "numpy {np.__version__}", "bits": {bits}, "seconds_per_batch": {s:.4f}, "gb_per_s": {d * 4 / s / 1e9:.3f}}}')


if __name__ == "__main__":
    main()
