#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# W4a / W4b ONNX Runtime peer, step 1: the W4 model as ONNX, exported by PyTorch from uvp's weights.
#
#   /usr/bin/python3 export_w4.py DIR
# DIR holds what `bench_w4_lstm_inference --w4_export=DIR` wrote (w4_weights.safetensors, the ids
# and uvp's logits). The weights are loaded into torch.nn.Embedding(10000, 32) -> LSTM(32, 64,
# batch_first) -> h_n -> Linear(64, 1), the same module as the LibTorch peer, which
# torch.onnx.export (TorchScript-based, opset 14) writes with a fixed batch:
#   DIR/w4a.onnx     ids int64 {1, 50}    -> logit float {1, 1}
#   DIR/w4b.onnx     ids int64 {1024, 50} -> logit float {1024, 1}
#   DIR/trivial.onnx x float {1} -> y = x + 1 (the binding's own per-call cost)
# and checks PyTorch's logits against uvp's (prints torch_max_abs_diff=; exit 1 above 1e-5), so
# that a mismatch in the weights' layout shows up here, before ONNX Runtime runs.
# Needs torch and numpy only: torch writes the ONNX files itself (no onnx package), and the
# safetensors reader is the few lines below (no safetensors package).
import json
import struct
import sys
import warnings

import numpy as np
import torch

VOCAB, EMBED, HIDDEN, SEQ_LEN = 10000, 32, 64, 50
OPSET = 14


def read_safetensors(path):
    """{name: float32 array} of a safetensors file holding F32 tensors."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: {len(blob)} bytes, too short for a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"{path}: header of {n} bytes in a file of {len(blob)}")
    header = json.loads(blob[8:8 + n])
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {t['dtype']}, expected F32")
        b, e = t["data_offsets"]
        count = int(np.prod(t["shape"], dtype=np.int64))
        if not 0 <= b <= e <= len(data) or e - b != 4 * count:
            raise ValueError(f"{path}: {name} has offsets [{b}, {e}] for shape {t['shape']}")
        out[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(t["shape"]).copy()
    return out


class W4Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, EMBED)
        self.lstm = torch.nn.LSTM(EMBED, HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, 1)

    def forward(self, ids):
        _, (h_n, _) = self.lstm(self.embedding(ids))
        return self.head(h_n[0])


class AddOne(torch.nn.Module):
    def forward(self, x):
        return x + 1


def export(module, example, path, input_name, output_name):
    # The exporter warns that a batch other than 1 is baked into the LSTM's initial state: the
    # batch is fixed on purpose (one file per batch size), so its warnings are noise here.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
    torch.onnx.export(module, (example,), path, input_names=[input_name], output_names=[output_name],
                      opset_version=OPSET, do_constant_folding=True)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: export_w4.py DIR (written by bench_w4_lstm_inference --w4_export=DIR)")
    d = sys.argv[1]
    weights = read_safetensors(f"{d}/w4_weights.safetensors")
    net = W4Net().eval()
    state = {k: torch.from_numpy(v) for k, v in weights.items()}
    missing = set(net.state_dict()) ^ set(state)
    if missing:
        sys.exit(f"export_w4.py: the weights and the module differ in {sorted(missing)}")
    net.load_state_dict(state)
    worst = 0.0
    with torch.no_grad():
        for name, batch in (("w4a", 1), ("w4b", 1024)):
            ids = np.fromfile(f"{d}/{name}_ids.i64", dtype="<i8").reshape(-1, SEQ_LEN)
            ref = np.fromfile(f"{d}/{name}_uvp.f32", dtype="<f4")
            got = net(torch.from_numpy(ids)).numpy().reshape(-1)
            worst = max(worst, float(np.max(np.abs(got - ref))))
            export(net, torch.from_numpy(ids[:batch].copy()), f"{d}/{name}.onnx", "ids", "logit")
        export(AddOne().eval(), torch.zeros(1), f"{d}/trivial.onnx", "x", "y")
    print(f"torch={torch.__version__} opset={OPSET} torch_max_abs_diff={worst:.3g}")
    if not worst <= 1e-5:
        sys.exit(f"export_w4.py: PyTorch's logits differ from uvp's by {worst:.3g} (> 1e-5)")


if __name__ == "__main__":
    main()
