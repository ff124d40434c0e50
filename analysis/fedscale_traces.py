"""FedScale's device traces as sflam tables.

FedScale ships two pickled dictionaries (its `benchmark/dataset/data/
device_info/` files):

- `client_device_capacity`: {client id: {"computation": inference time
  of its reference model [ms per sample], "communication": bandwidth
  [kbit/s]}}.
- `client_behave_trace`: {client id: {"active": [instants the phone
  becomes available], "inactive": [instants it stops], "finish_time":
  the trace's period [s], "duration": ..., "model": phone model}}; FedScale
  reads the instants modulo `finish_time` (a cyclic trace).

This script writes, for the first N clients in ascending id order (or all),

- `DEVICES.csv`: `device` (0..N-1), `fedscale_client`, `flops_per_s`
  (training FLOP/s: see below), `uplink_bps`, `phone_model`;
- `AVAILABILITY.csv`: `device`, `start_s`, `end_s`, `period_s`: one row per
  online interval [active_i, inactive_i], repeating every `finish_time`.

Assumptions, each a flag:

- FedScale times inference of its own reference model, so a device's
  sustained rate is taken as flops_per_s = `--reference-gflops` x 1e9 /
  (ms / 1000), with `--reference-gflops` the reference model's inference
  GFLOPs per sample (default 0.6: MobileNet V2 at 224x224, 0.3 G
  multiply-adds). sflam times the split ViT's device part at that rate
  from its own FLOP count (training = forward + weight gradient), so the
  backward pass is in the FLOPs, not in the rate (FedScale instead
  multiplies the inference time by 3).
- `communication` is kbit/s, FedScale's unit for it (its update sizes are
  in kbit): uplink_bps = 1000 x communication.

A pickle can run code when loaded. These files hold only dictionaries,
lists, strings and numbers, so they are read with an unpickler that
admits no global at all: any class or function a pickle names is refused
by its name, before anything runs.

usage: python3 analysis/fedscale_traces.py CAPACITY.pkl BEHAVE.pkl DEVICES.csv AVAILABILITY.csv [--clients N]
       [--reference-gflops G]"""

import argparse
import csv
import io
import math
import pickle
import sys


class RefusedPickle(pickle.UnpicklingError):
    pass


class ContainersOnly(pickle.Unpickler):
    """Admits the builtin containers and numbers only (they need no
    global); every global a pickle asks for is refused by name."""

    def find_class(self, module, name):
        raise RefusedPickle(f"refused to load {module}.{name}: only dictionaries, lists, strings and numbers are read")


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    try:
        return ContainersOnly(io.BytesIO(data)).load()
    except RefusedPickle as e:
        sys.exit(f"error: {path}: {e}")
    except Exception as e:  # a truncated or corrupt file
        sys.exit(f"error: {path}: not a readable pickle: {e}")


def number(path, client, field, v, positive=True):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (positive and v <= 0):
        sys.exit(f"error: {path}: client {client!r}: field `{field}` = {v!r}: a finite number{' > 0' if positive else ''} is needed")
    return float(v)


def convert(capacity_path, behave_path, clients=None, reference_gflops=0.6):
    cap = load(capacity_path)
    beh = load(behave_path)
    for path, d in [(capacity_path, cap), (behave_path, beh)]:
        if not isinstance(d, dict) or not d:
            sys.exit(f"error: {path}: a non-empty dictionary keyed by client id is needed")
    ids = sorted(cap, key=lambda k: (str(type(k)), k))
    missing = [k for k in ids if k not in beh]
    if missing:
        sys.exit(f"error: {behave_path}: no trace for client {missing[0]!r} (in {capacity_path}); "
                 f"{len(missing)} of {len(ids)} clients lack one")
    if clients is not None:
        if clients > len(ids):
            sys.exit(f"error: --clients {clients}: the files hold {len(ids)} clients")
        ids = ids[:clients]
    devices, intervals = [], []
    for dev, cid in enumerate(ids):
        c = cap[cid]
        if not isinstance(c, dict):
            sys.exit(f"error: {capacity_path}: client {cid!r}: a dictionary with `computation` and `communication` is needed")
        for f in ["computation", "communication"]:
            if f not in c:
                sys.exit(f"error: {capacity_path}: client {cid!r}: no field `{f}`")
        ms = number(capacity_path, cid, "computation", c["computation"])
        kbps = number(capacity_path, cid, "communication", c["communication"])
        t = beh[cid]
        if not isinstance(t, dict):
            sys.exit(f"error: {behave_path}: client {cid!r}: a dictionary is needed")
        for f in ["active", "inactive", "finish_time"]:
            if f not in t:
                sys.exit(f"error: {behave_path}: client {cid!r}: no field `{f}`")
        period = number(behave_path, cid, "finish_time", t["finish_time"])
        act, ina = list(t["active"]), list(t["inactive"])
        if len(act) != len(ina):
            sys.exit(f"error: {behave_path}: client {cid!r}: {len(act)} `active` instants but {len(ina)} `inactive`")
        last = -math.inf
        for i, (a, b) in enumerate(zip(act, ina)):
            a = number(behave_path, cid, f"active[{i}]", a, positive=False)
            b = number(behave_path, cid, f"inactive[{i}]", b, positive=False)
            if not (0 <= a < b <= period) or a < last:
                sys.exit(
                    f"error: {behave_path}: client {cid!r}: interval {i} [{a}, {b}]: intervals must be increasing, "
                    f"non-overlapping, within [0, finish_time = {period}]"
                )
            last = b
            intervals.append({"device": dev, "start_s": a, "end_s": b, "period_s": period})
        devices.append(
            {
                "device": dev,
                "fedscale_client": cid,
                "flops_per_s": reference_gflops * 1e9 / (ms / 1000.0),
                "uplink_bps": 1000.0 * kbps,
                "phone_model": str(t.get("model", "")),
            }
        )
    return devices, intervals


def write(path, rows, fields):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capacity")
    ap.add_argument("behave")
    ap.add_argument("devices_csv")
    ap.add_argument("availability_csv")
    ap.add_argument("--clients", type=int, default=None)
    ap.add_argument("--reference-gflops", type=float, default=0.6)
    a = ap.parse_args()
    if not (a.reference_gflops > 0 and math.isfinite(a.reference_gflops)):
        sys.exit("error: --reference-gflops: a positive number")
    devices, intervals = convert(a.capacity, a.behave, a.clients, a.reference_gflops)
    write(a.devices_csv, devices, ["device", "fedscale_client", "flops_per_s", "uplink_bps", "phone_model"])
    write(a.availability_csv, intervals, ["device", "start_s", "end_s", "period_s"])
    print(f"wrote {len(devices)} devices to {a.devices_csv} and {len(intervals)} intervals to {a.availability_csv}")


if __name__ == "__main__":
    main()
