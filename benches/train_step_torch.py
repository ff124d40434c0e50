"""The training step of benches/train_step.rs and examples/train_step.rs in
PyTorch: the same ViT (pre-norm blocks with a fused qkv projection, class
token, 10 classes), Adam, fp32 (TF32 off on CUDA), random inputs. Prints
seconds per step. With --precision f16 or bf16, the forward runs under
torch.autocast in that type, PyTorch's counterpart of sflam's
`training.precision` (its matrix products in the type; weights, gradients
and Adam in fp32), f16 with a GradScaler, as sflam scales f16's loss.
usage: python3 benches/train_step_torch.py [THREADS] [--model NAME]
       [--batch B] [--device cpu|cuda] [--steps N] [--precision f32|f16|bf16]
(defaults: all cores, vit-small-32, 64, cpu, 10, f32)"""
import contextlib
import argparse
import os
import time

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, mlp), nn.Linear(mlp, dim)
        self.heads = heads

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1) @ v
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


class Vit(nn.Module):
    def __init__(self, dim=192, depth=6, heads=3, mlp=768, patch=4, image=32, classes=10):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp) for _ in range(depth))
        self.norm, self.head = nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


# sflam's `workload` configurations: (dim, depth, heads, mlp, patch, image).
MODELS = {
    "vit-small-32": (192, 6, 3, 768, 4, 32),
    "vit-tiny-32": (64, 4, 4, 128, 4, 32),
    "vit-b32": (768, 12, 12, 3072, 32, 224),
    "vit-b16": (768, 12, 12, 3072, 16, 224),
    "vit-s32": (384, 12, 6, 1536, 32, 224),
    "vit-ti16": (192, 12, 3, 768, 16, 224),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("threads", nargs="?", type=int, default=os.cpu_count())
    p.add_argument("--model", default="vit-small-32", choices=sorted(MODELS))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--precision", default="f32", choices=["f32", "f16", "bf16"])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    dim, depth, heads, mlp, patch, image = MODELS[a.model]
    dev = torch.device(a.device)
    model = Vit(dim, depth, heads, mlp, patch, image).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(a.batch, 3, image, image, device=dev), (torch.arange(a.batch) % 10).to(dev)

    half = {"f16": torch.float16, "bf16": torch.bfloat16}.get(a.precision)
    scaler = torch.amp.GradScaler(a.device, enabled=a.precision == "f16")

    def autocast():
        if half is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=a.device, dtype=half)

    def step():
        opt.zero_grad()
        with autocast():
            loss = nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        # The loss back on the host, as sflam's step reads it.
        return loss.item()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = (time.perf_counter() - t) / a.steps
    where = f"{a.threads} threads" if a.device == "cpu" else torch.cuda.get_device_name()
    print(f"pytorch {torch.__version__} {a.device} {a.precision} ({where}), {a.model}, batch {a.batch}: {dt:.4f} s/step")


if __name__ == "__main__":
    main()
