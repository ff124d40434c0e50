"""Writes CIFAR-10's binary format (data_batch_1..5.bin, test_batch.bin:
records of 1 label byte + 3x32x32 bytes) with a learnable synthetic task:
each class is a fixed random 32x32x3 pattern, each image its class's
pattern plus noise. For timing the paper's model on a machine without the
real data set (no download here), and for checking that it trains.
usage: python3 benches/synthetic_cifar10.py OUT_DIR [IMAGES_PER_TRAIN_BATCH]"""
import os
import sys

import numpy as np


def main():
    out = sys.argv[1]
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 256, size=(10, 3 * 32 * 32)).astype(np.float32)

    def batch(n):
        labels = rng.integers(0, 10, size=n)
        noise = rng.normal(0.0, 64.0, size=(n, 3 * 32 * 32))
        images = np.clip(0.5 * patterns[labels] + 64.0 + noise, 0, 255).astype(np.uint8)
        return np.concatenate([labels.astype(np.uint8)[:, None], images], axis=1).tobytes()

    for i in range(1, 6):
        with open(os.path.join(out, f"data_batch_{i}.bin"), "wb") as f:
            f.write(batch(per))
    with open(os.path.join(out, "test_batch.bin"), "wb") as f:
        f.write(batch(10000))


if __name__ == "__main__":
    main()
