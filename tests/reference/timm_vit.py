"""Reference for the timm import: a small timm ViT, its weights, an input
batch and timm's own logits, written by PyTorch + timm (never a runtime
dependency of sflam). The test `timm_reference_logits` loads the checked-in
files into sflam's model and matches timm's logits to 1e-4.

The model is timm's `VisionTransformer` with the layout of a real
checkpoint (class token, position embedding with the class slot, pre-norm
blocks, fused qkv with bias, exact GELU, LayerNorm eps 1e-6, the head on the
class token), at a size a test can run: 28x28x1 images, patch 7, width 32,
depth 2, 4 heads, MLP 64, 10 classes. Every tensor is drawn at random with
a scale that keeps the logits of order one (LayerNorm weights and all
biases too, so a tensor loaded into the wrong place shows).

A second file, `timm_vit_wrapped.safetensors`, holds the same weights under
`module.` (what `torch.nn.DataParallel` and many training scripts save).

Resampling reference (`resampled`): the same checkpoint loaded by timm's own
`checkpoint_filter_fn` into the model built for 42x42 images (a 6x6 patch
grid instead of 4x4: timm resamples the position embedding bicubically,
class token kept), the input batch resized to 42x42 bilinearly
(`F.interpolate`, half-pixel centres, no antialiasing), and timm's logits
of the resized batch.

run: pip install torch timm safetensors && python3 tests/reference/timm_vit.py
"""
from pathlib import Path
import json

import torch
import timm
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent


def main():
    torch.manual_seed(20261122)
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=32, depth=2,
        num_heads=4, mlp_ratio=2.0, qkv_bias=True, global_pool="token", class_token=True,
    ).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p) / max(1.0, p.shape[-1] ** 0.5 / 4))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(OUT / "timm_vit.safetensors"))
    save_file({f"module.{k}": v for k, v in state.items()}, str(OUT / "timm_vit_wrapped.safetensors"))
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        logits = model(x)
    big = timm.models.vision_transformer.VisionTransformer(
        img_size=42, patch_size=7, in_chans=1, num_classes=10, embed_dim=32, depth=2,
        num_heads=4, mlp_ratio=2.0, qkv_bias=True, global_pool="token", class_token=True,
    ).eval()
    big.load_state_dict(timm.models.vision_transformer.checkpoint_filter_fn(dict(state), big))
    x42 = torch.nn.functional.interpolate(x, size=(42, 42), mode="bilinear", align_corners=False, antialias=False)
    with torch.no_grad():
        logits42 = big(x42)
    (OUT / "timm_vit.json").write_text(json.dumps({
        "resampled": {
            "image": 42,
            "pos_embed": big.pos_embed.detach().flatten().tolist(),
            "input": x42.flatten().tolist(),
            "logits": logits42.flatten().tolist(),
        },
        "generator": "tests/reference/timm_vit.py",
        "torch": torch.__version__,
        "timm": timm.__version__,
        "config": {"image": 28, "patch": 7, "channels": 1, "dim": 32, "depth": 2, "heads": 4,
                   "mlp_dim": 64, "classes": 10},
        "input_shape": list(x.shape),
        "input": x.flatten().tolist(),
        "logits": logits.flatten().tolist(),
    }, indent=1) + "\n")
    print("wrote timm_vit.safetensors, timm_vit_wrapped.safetensors, timm_vit.json;", "logits[0] =", logits[0].tolist())


if __name__ == "__main__":
    main()
