"""Cuts this folder's subset (the first 6,000 training and 1,000 test
images, labels alike) out of Debian's full Fashion-MNIST, byte for byte in
the IDX format; gzip without a timestamp, so the files are reproducible.

run: python3 crates/train/data/fashion-mnist-subset/make.py"""
import gzip
import struct
from pathlib import Path

SRC = Path("/usr/share/datasets/fashion-mnist")
OUT = Path(__file__).resolve().parent


def cut(stem, n, dims):
    raw = gzip.open(SRC / f"{stem}.gz").read()
    head = 4 + 4 * dims
    shape = [struct.unpack(">I", raw[4 + 4 * i:8 + 4 * i])[0] for i in range(dims)]
    per = 1
    for d in shape[1:]:
        per *= d
    out = raw[:4] + struct.pack(">I", n) + raw[8:head] + raw[head:head + n * per]
    with gzip.GzipFile(OUT / f"{stem}.gz", "wb", mtime=0) as f:
        f.write(out)


if __name__ == "__main__":
    cut("train-images-idx3-ubyte", 6000, 3)
    cut("train-labels-idx1-ubyte", 6000, 1)
    cut("t10k-images-idx3-ubyte", 1000, 3)
    cut("t10k-labels-idx1-ubyte", 1000, 1)
