#!/usr/bin/env python3
"""Independent reference for SPEC sections 1 to 5: per-device times,
energies and rate from the closed forms, written from the SPEC text alone
(no code shared with the Rust crate). Regenerate with

    python3 tests/reference/closed_forms.py > tests/reference/closed_forms.json

Each case fixes every random attribute (min = max) so the expected values are
deterministic; the Rust test runs one round of each case through the event
kernel (fixed allocator, ideal server, no fading) and compares."""
import json, math

# ViT-B/32 and ViT-L/16 at 224x224, patch embedding on the device.
MODELS = {
    "vit-b32": dict(image=224, ch=3, patch=32, dim=768, depth=12, mlp=3072, classes=10),
    "vit-l16": dict(image=224, ch=3, patch=16, dim=1024, depth=24, mlp=4096, classes=10),
}

def workload(m):
    tokens = (m["image"] // m["patch"]) ** 2
    patch_in = m["ch"] * m["patch"] ** 2
    dev_fwd = 2 * tokens * patch_in * m["dim"]
    n, d, h = tokens + 1, m["dim"], m["mlp"]
    block_macs = 3 * n * d * d + 2 * n * n * d + n * d * d + 2 * n * d * h
    srv_fwd = 2 * (m["depth"] * block_macs + d * m["classes"])
    return dict(tokens=tokens, dev_fwd=dev_fwd, dev_train=2 * dev_fwd, srv_train=3 * srv_fwd, cut=tokens * d)

CASES = [
    dict(name="near-fast", model="vit-b32", distance_m=100.0, p_w=0.5, f_hz=1.5e9, cores=6, kappa=1e-28,
         server_hz=3e9, server_cores=5120, server_fpc=2, bits=8, batch=64, bw_hz=20e6, n0_dbm_hz=-174.0, iterations=1),
    dict(name="mid", model="vit-b32", distance_m=500.0, p_w=1.0, f_hz=1.0e9, cores=5, kappa=1e-28,
         server_hz=3e9, server_cores=2560, server_fpc=1, bits=4, batch=64, bw_hz=20e6, n0_dbm_hz=-174.0, iterations=2),
    dict(name="far-slow", model="vit-l16", distance_m=1000.0, p_w=2.0, f_hz=0.5e9, cores=4, kappa=1e-28,
         server_hz=3e9, server_cores=4000, server_fpc=2, bits=16, batch=32, bw_hz=180e3, n0_dbm_hz=-174.0, iterations=1),
]

def expected(c):
    w = workload(MODELS[c["model"]])
    b = c["batch"]
    fps = c["f_hz"] * c["cores"] * 1.0
    t_fwd = b * w["dev_fwd"] / fps                    # eq. 9, forward half
    t_bwd = b * (w["dev_train"] - w["dev_fwd"]) / fps  # weight gradient only
    t_srv = b * w["srv_train"] / (c["server_hz"] * c["server_cores"] * c["server_fpc"])  # eq. 11
    pl_db = 128.1 + 37.6 * math.log10(c["distance_m"] / 1000.0)
    h = 10 ** (-pl_db / 10)
    noise_w = 10 ** ((c["n0_dbm_hz"] - 30) / 10) * c["bw_hz"]
    rate = c["bw_hz"] * math.log2(1 + c["p_w"] * h / noise_w)  # eq. 12
    d = b * w["cut"]
    s_bits = d * (c["bits"] + 1) + 64                          # eq. 8
    t_com = s_bits / rate                                      # eq. 14
    p_cmp = c["kappa"] * c["cores"] * c["f_hz"] ** 3
    I = c["iterations"]
    e_cmp = I * p_cmp * (t_fwd + t_bwd)                        # eq. 10
    e_com = I * c["p_w"] * t_com                               # eq. 15
    total = I * (t_fwd + t_bwd + t_com + t_srv)                # eq. 16
    return dict(gain=h, rate_bps=rate, payload_bits=s_bits, t_cmp_s=I * (t_fwd + t_bwd), t_com_s=I * t_com,
                t_srv_s=I * t_srv, time_s=total, energy_cmp_j=e_cmp, energy_com_j=e_com, energy_j=e_cmp + e_com)

print(json.dumps([dict(case=c, expected=expected(c)) for c in CASES], indent=2))
