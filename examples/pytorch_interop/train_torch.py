#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The PyTorch half of examples/pytorch_interop (run by hand; the test suite never runs Python).

    train  trains the purchase LSTM (Embedding(85, 32, padding 0) -> LSTM(32, 64) -> h at the last
           valid step -> Linear(64, 1) -> sigmoid) on the CDNOW train customers that the C++
           example exports, and writes DIR/torch_model.safetensors (its state_dict) and
           DIR/torch_test_probabilities.csv (customer_id,label,p_torch of every test customer);
    check  loads uvp's export (uvp_finetuned.safetensors) with load_state_dict(strict=True),
           scores the test customers and compares with the C++ example's
           uvp_finetuned_probabilities.csv; exit status 1 when they differ by more than
           --tolerance (1e-6).

The customers, their split, labels and tokens come from the C++ example itself
(`pytorch_interop --export-sequences FILE`, or --example PATH to let this script run it), so both
sides read the same data. safetensors is written and read by the small helpers below (the format:
8-byte little-endian header size, a JSON header {name: {dtype, shape, data_offsets}}, then the
raw little-endian tensor bytes), since Debian has no safetensors package.

Needs Debian's python3-torch, python3-numpy and python3-sklearn (/usr/bin/python3).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
EMBED, HIDDEN = 32, 64  # PurchaseModelSizes in examples/common/purchase_models.hpp


# --- safetensors, by hand -------------------------------------------------------------------------

def save_safetensors(path, tensors, metadata=None):
    """Writes float32 tensors (name -> torch.Tensor) as safetensors, atomically."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        a = tensors[name].detach().cpu().contiguous().numpy()
        if a.dtype != np.float32:
            raise ValueError(f"save_safetensors: tensor {name!r} is {a.dtype}, only float32 is written")
        data = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data start 8-byte aligned, as the reference writer does
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path):
    """name -> torch.Tensor (float32) of a safetensors file; ValueError for a malformed one."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: {len(raw)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header size {n} is larger than the file's {len(raw) - 8} remaining bytes")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info.get("dtype") != "F32":
            raise ValueError(f"{path}: tensor {name!r} has dtype {info.get('dtype')!r}, expected F32")
        shape = [int(s) for s in info["shape"]]
        begin, end = (int(o) for o in info["data_offsets"])
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= begin <= end <= len(data)) or end - begin != 4 * count:
            raise ValueError(f"{path}: tensor {name!r}: data_offsets {[begin, end]} do not hold shape {shape} "
                             f"in {len(data)} bytes of data")
        a = np.frombuffer(data, dtype="<f4", count=count, offset=begin).reshape(shape)
        out[name] = torch.from_numpy(a.astype(np.float32))  # a copy: writable, native order
    return out, header.get("__metadata__", {})


# --- the data, as the C++ example exports it ------------------------------------------------------

def read_sequences(path):
    """{split: (ids[n, max_len] int64, lengths[n], labels[n] float32, customer ids)}, vocabulary size."""
    keys, rows = {}, {"train": [], "validation": [], "test": []}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            if fields[0] in rows:
                rows[fields[0]].append((fields[1], int(fields[2]), [int(t) for t in fields[3:]]))
            else:
                keys[fields[0]] = int(fields[1])
    if keys.get("uvp_sequences") != 1:
        raise ValueError(f"{path}: not a `pytorch_interop --export-sequences` file")
    max_len, vocab = keys["max_len"], keys["vocabulary_size"]
    out = {}
    for split, items in rows.items():
        ids = np.full((len(items), max_len), keys["padding_id"], dtype=np.int64)
        for k, (_, _, tokens) in enumerate(items):
            ids[k, :len(tokens)] = tokens
        out[split] = (torch.from_numpy(ids), torch.tensor([len(t) for _, _, t in items]),
                      torch.tensor([y for _, y, _ in items], dtype=torch.float32), [c for c, _, _ in items])
    return out, vocab


def sequences_file(args):
    """--sequences, or a file the C++ example (--example) writes into a temporary directory."""
    if args.sequences:
        return args.sequences
    if not args.example:
        sys.exit("give --sequences FILE (from `pytorch_interop --export-sequences FILE`) or --example PATH")
    args.tmp = tempfile.TemporaryDirectory(prefix="pytorch_interop_")  # removed at exit
    path = os.path.join(args.tmp.name, "sequences.txt")
    subprocess.run([args.example, "--export-sequences", path], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return path


# --- the model: uvp's purchase_lstm_model, attribute names = uvp block names ----------------------

class PurchaseLstm(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, EMBED, padding_idx=0)
        self.lstm = torch.nn.LSTM(EMBED, HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, 1)

    def forward(self, ids, lengths):
        """One logit per sequence from h at its last valid step: h_n of the packed sequences, as
        uvp's Lstm runs over each sequence's valid steps only (packing also skips the padding's
        work: half the customers have 2 tokens of 32)."""
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.embedding(ids), lengths, batch_first=True,
                                                         enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return self.head(h_n[-1]).squeeze(1)


@torch.no_grad()
def probabilities(model, split):
    model.eval()
    ids, lengths, _, _ = split
    return torch.sigmoid(model(ids, lengths))


def write_probabilities(path, split, p, column):
    _, _, y, customers = split
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"customer_id,label,{column}\n")
        for c, label, prob in zip(customers, y.tolist(), p.tolist()):
            f.write(f"{c},{int(label)},{prob:.9g}\n")  # 9 digits: the float32 exactly
    os.replace(tmp, path)


def read_probabilities(path, column):
    with open(path) as f:
        names = f.readline().strip().split(",")
        col = names.index(column)
        rows = [line.strip().split(",") for line in f if line.strip()]
    return [r[0] for r in rows], np.array([float(r[col]) for r in rows])


# --- the two modes --------------------------------------------------------------------------------

def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    data, vocab = read_sequences(sequences_file(args))
    ids, lengths, y, _ = data["train"]
    model = PurchaseLstm(vocab)
    # The uvp examples' setting (AdamW lr 1e-3, decoupled weight decay 0.5, batch 256), best
    # validation epoch kept.
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.5)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best, best_state, best_epoch = -1.0, None, 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(y))
        for s in range(0, len(y), args.batch):
            b = order[s:s + args.batch]
            opt.zero_grad()
            loss = loss_fn(model(ids[b], lengths[b]), y[b])
            loss.backward()
            opt.step()
        auc = roc_auc_score(data["validation"][2].numpy(), probabilities(model, data["validation"]).numpy())
        print(f"epoch {epoch}: loss {loss.item():.4f} validation_roc_auc {auc:.4f}", file=sys.stderr)
        if auc > best:
            best, best_epoch = auc, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    p = probabilities(model, data["test"])
    os.makedirs(args.out, exist_ok=True)
    save_safetensors(os.path.join(args.out, "torch_model.safetensors"), model.state_dict(),
                     {"format": "pt", "producer": "examples/pytorch_interop/train_torch.py"})
    write_probabilities(os.path.join(args.out, "torch_test_probabilities.csv"), data["test"], p, "p_torch")
    print(f"torch_version: {torch.__version__}")
    print(f"vocabulary_size: {vocab}")
    print(f"train_customers: {len(y)}\ntest_customers: {len(data['test'][2])}")
    print(f"best_epoch: {best_epoch}\nvalidation_roc_auc: {best:.4f}")
    print(f"test_roc_auc: {roc_auc_score(data['test'][2].numpy(), p.numpy()):.4f}")


def check(args):
    data, vocab = read_sequences(sequences_file(args))
    tensors, metadata = load_safetensors(args.model)
    model = PurchaseLstm(vocab)
    model.load_state_dict(tensors, strict=True)  # every name and shape must match, nothing left over
    p = probabilities(model, data["test"]).double().numpy()
    customers, p_uvp = read_probabilities(args.probabilities, "p_uvp")
    if customers != data["test"][3]:
        sys.exit(f"{args.probabilities}: not the test customers of the sequences file, in its order")
    diff = float(np.max(np.abs(p - p_uvp)))
    print(f"loaded_tensors: {len(tensors)}")
    print(f"metadata: {json.dumps(metadata, sort_keys=True)}")
    print(f"test_customers: {len(p)}")
    print(f"max_abs_diff_vs_uvp: {diff:.3g}")
    print(f"torch_test_roc_auc: {roc_auc_score(data['test'][2].numpy(), p):.4f}")
    if not diff <= args.tolerance:
        print(f"max_abs_diff_vs_uvp {diff:.3g} is above the tolerance {args.tolerance:g}", file=sys.stderr)
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    for name in ("train", "check"):
        p = sub.add_parser(name)
        p.add_argument("--sequences", help="`pytorch_interop --export-sequences` output")
        p.add_argument("--example", help="the built pytorch_interop, run to export the sequences")
    t = sub.choices["train"]
    t.add_argument("--out", default=os.path.join(HERE, "data"), help="where the two files go (default: data/)")
    t.add_argument("--epochs", type=int, default=6)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--batch", type=int, default=256)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--threads", type=int, default=1)
    c = sub.choices["check"]
    c.add_argument("--model", required=True, help="uvp's export, e.g. out/pytorch_interop/uvp_finetuned.safetensors")
    c.add_argument("--probabilities", required=True, help="the C++ example's uvp_finetuned_probabilities.csv")
    c.add_argument("--tolerance", type=float, default=1e-6)
    args = ap.parse_args()
    train(args) if args.mode == "train" else check(args)


if __name__ == "__main__":
    main()
