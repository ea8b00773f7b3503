#!/usr/bin/env python3
"""Builds an ONNX graph of a MiniFASNet passive-liveness network from its original PyTorch weight file.

    python3 scripts/liveness-onnx.py IN.pth OUT.onnx [--model v2|v1se]

IN.pth is one of the two Silent-Face-Anti-Spoofing weight files (PyTorch's legacy, non-zip serialisation):
  model A  2.7_80x80_MiniFASNetV2.pth       MiniFASNetV2
  model B  4_0_0_80x80_MiniFASNetV1SE.pth   MiniFASNetV1SE (with squeeze-excitation)
The network is recognised from the tensors (names and shapes must match one of the two exactly); --model forces
one. Nothing here imports PyTorch: the file is read with `pickle` (a restricted Unpickler that only knows the few
names a state dict needs) and numpy.

The ONNX model (opset 11, ir_version 6, for OpenCV 4.6 dnn's readNetFromONNX):
  input  `input`  float32 [1,3,80,80]: an 80x80 BGR crop, raw 0..255 values, no mean, no scaling
  output `prob`   float32 [1,3]: softmax probabilities (not logits); class 1 = real face, 0 and 2 = spoof
Every BatchNorm2d is folded into the convolution before it and the 1-D BatchNorm after the 512->128 linear layer
into that layer: w' = w * g / sqrt(var + 1e-5), b' = beta - mean * g / sqrt(var + 1e-5) (in float64, stored as
float32). The output is written to a temporary file in the same folder and renamed, so OUT.onnx either appears
whole or not at all. Exit status: 0 done, 1 the input is not one of the two networks (or is unreadable), 2 usage.
"""
import argparse
import collections
import hashlib
import io
import os
import pickle
import struct
import sys
import tempfile

import numpy as np

BN_EPS = 1e-5
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


class WeightFileError(Exception):
    pass


# --------------------------------------------------------------------------------------------------------------
# Reading the legacy PyTorch file without PyTorch

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "LongStorage": np.dtype("<i8"),
    "DoubleStorage": np.dtype("<f8"),
    "IntStorage": np.dtype("<i4"),
    "HalfStorage": np.dtype("<f2"),
}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _TensorRef:
    """A tensor as the pickle describes it; its data is attached once the storages have been read."""

    def __init__(self, storage_key, offset, size, stride):
        self.storage_key, self.offset, self.size, self.stride = storage_key, offset, tuple(size), tuple(stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    if not isinstance(storage, tuple) or len(storage) != 2:
        raise WeightFileError("a tensor does not refer to a storage")
    return _TensorRef(storage[0], storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Knows only what a state dict of plain tensors needs; any other global is refused (no code runs)."""

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages  # key -> (dtype, numel), filled as persistent ids are met

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise WeightFileError(f"the file refers to {module}.{name}, which a plain state dict does not contain")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise WeightFileError(f"unexpected persistent id {pid!r:.80}")
        _, stype, key, _location, numel = pid[:5]
        if not isinstance(stype, _StorageType):
            raise WeightFileError("a storage has an unknown type")
        if len(pid) > 5 and pid[5] is not None:
            raise WeightFileError("storage views are not supported")
        key = str(key)
        self.storages[key] = (stype.dtype, int(numel))
        return (key, stype.dtype)


def read_legacy_state_dict(path):
    """Returns an OrderedDict name -> numpy array (a copy, C-contiguous)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"PK":
        raise WeightFileError("this is a zip-format torch file; only the legacy serialisation is expected here")
    f = io.BytesIO(data)
    storages = {}
    try:
        magic = pickle.Unpickler(f).load()
        protocol = pickle.Unpickler(f).load()
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise WeightFileError("not a legacy PyTorch file (wrong magic number or protocol)")
        sys_info = pickle.Unpickler(f).load()
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
            raise WeightFileError("the file was not written little-endian")
        state = _RestrictedUnpickler(f, storages).load()
        keys = pickle.Unpickler(f).load()
    except WeightFileError:
        raise
    except Exception as e:  # a truncated or foreign file
        raise WeightFileError(f"cannot read the pickled header ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise WeightFileError("the pickled object is not a state dict")
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(storages):
        raise WeightFileError("the list of storage keys does not match the storages the tensors use")
    arrays = {}
    for key in map(str, keys):
        dtype, numel = storages[key]
        head = f.read(8)
        if len(head) != 8:
            raise WeightFileError("the file ends inside the storage data")
        (count,) = struct.unpack("<q", head)
        if count != numel:
            raise WeightFileError(f"storage {key} holds {count} elements, the header says {numel}")
        raw = f.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise WeightFileError("the file ends inside the storage data")
        arrays[key] = np.frombuffer(raw, dtype=dtype)
    if f.read(1):
        raise WeightFileError("trailing bytes after the last storage")
    out = collections.OrderedDict()
    for name, t in state.items():
        if not isinstance(t, _TensorRef):
            raise WeightFileError(f"entry {name!r} is not a tensor")
        buf = arrays[t.storage_key]
        n = int(np.prod(t.size, dtype=np.int64)) if t.size else 1
        if t.size:
            last = t.offset + sum((s - 1) * st for s, st in zip(t.size, t.stride))
            if n == 0 or t.offset < 0 or last >= buf.size:
                raise WeightFileError(f"tensor {name!r} lies outside its storage")
            a = np.lib.stride_tricks.as_strided(
                buf[t.offset:], shape=t.size, strides=[st * buf.itemsize for st in t.stride], writeable=False)
        else:
            if t.offset >= buf.size:
                raise WeightFileError(f"tensor {name!r} lies outside its storage")
            a = buf[t.offset:t.offset + 1].reshape(())
        out[str(name)] = np.array(a, dtype=a.dtype.newbyteorder("="), order="C")
    return out


# --------------------------------------------------------------------------------------------------------------
# The two networks: their blocks, hence every tensor name and shape that the file must hold

# (name, stride, [(mid, out)...]) per stage of Depth_Wise blocks; `residual` stages keep channels and add.
MODELS = {
    "v2": {
        "title": "MiniFASNetV2 (model A, 2.7_80x80)",
        "conv_23": 103, "conv_3": [13, 13, 13, 13], "conv_34": 231,
        "conv_4": [231, 52, 26, 77, 26, 26], "conv_45": 308, "conv_5": [26, 26], "se": False,
    },
    "v1se": {
        "title": "MiniFASNetV1SE (model B, 4_0_0_80x80)",
        "conv_23": 103, "conv_3": [13, 26, 13, 52], "conv_34": 231,
        "conv_4": [154, 52, 26, 52, 26, 26], "conv_45": 308, "conv_5": [26, 26], "se": True,
    },
}
SE_REDUCTION = 4
EMBEDDING = 128
CLASSES = 3


def layer_plan(spec):
    """The network as a list of layers, each a dict; the source of both the expected tensors and the graph."""
    plan = []

    def conv(name, cin, cout, k, s, p, groups, prelu=True):
        plan.append(dict(kind="conv", name=name, cin=cin, cout=cout, k=k, s=s, p=p, groups=groups, prelu=prelu))

    def depth_wise(name, cin, mid, cout, stride):
        conv(name + ".conv", cin, mid, 1, 1, 0, 1)
        conv(name + ".conv_dw", mid, mid, 3, stride, 1, mid)
        conv(name + ".project", mid, cout, 1, 1, 0, 1, prelu=False)

    def residual(stage, ch, mids):
        for i, mid in enumerate(mids):
            name = f"{stage}.model.{i}"
            plan.append(dict(kind="save", name=name))
            depth_wise(name, ch, mid, ch, 1)
            if spec["se"] and i == len(mids) - 1:
                plan.append(dict(kind="se", name=name + ".se_module", ch=ch, red=ch // SE_REDUCTION))
            plan.append(dict(kind="add", name=name))

    conv("conv1", 3, 32, 3, 2, 1, 1)
    conv("conv2_dw", 32, 32, 3, 1, 1, 32)
    depth_wise("conv_23", 32, spec["conv_23"], 64, 2)
    residual("conv_3", 64, spec["conv_3"])
    depth_wise("conv_34", 64, spec["conv_34"], 128, 2)
    residual("conv_4", 128, spec["conv_4"])
    depth_wise("conv_45", 128, spec["conv_45"], 128, 2)
    residual("conv_5", 128, spec["conv_5"])
    conv("conv_6_sep", 128, 512, 1, 1, 0, 1)
    conv("conv_6_dw", 512, 512, 5, 1, 0, 512, prelu=False)
    plan.append(dict(kind="head", cin=512, emb=EMBEDDING, classes=CLASSES))
    return plan


def _bn_shapes(prefix, n):
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def expected_tensors(spec):
    """name (without the DataParallel `module.` prefix) -> shape."""
    shapes = {}
    for layer in layer_plan(spec):
        if layer["kind"] == "conv":
            n, k = layer["name"], layer["k"]
            shapes[n + ".conv.weight"] = (layer["cout"], layer["cin"] // layer["groups"], k, k)
            shapes.update(_bn_shapes(n + ".bn", layer["cout"]))
            if layer["prelu"]:
                shapes[n + ".prelu.weight"] = (layer["cout"],)
        elif layer["kind"] == "se":
            n, c, r = layer["name"], layer["ch"], layer["red"]
            shapes[n + ".fc1.weight"] = (r, c, 1, 1)
            shapes.update(_bn_shapes(n + ".bn1", r))
            shapes[n + ".fc2.weight"] = (c, r, 1, 1)
            shapes.update(_bn_shapes(n + ".bn2", c))
        elif layer["kind"] == "head":
            shapes["linear.weight"] = (layer["emb"], layer["cin"])
            shapes.update(_bn_shapes("bn", layer["emb"]))
            shapes["prob.weight"] = (layer["classes"], layer["emb"])
    return shapes


def strip_prefix(state):
    names = list(state)
    if names and all(n.startswith("module.") for n in names):
        return collections.OrderedDict((n[len("module."):], v) for n, v in state.items())
    return state


def mismatches(state, spec):
    """Human-readable differences between the file's tensors and the network's; empty when they match."""
    want = expected_tensors(spec)
    problems = []
    for name in sorted(set(want) - set(state)):
        problems.append(f"missing tensor {name} {list(want[name])}")
    for name in sorted(set(state) - set(want)):
        problems.append(f"unexpected tensor {name} {list(state[name].shape)}")
    for name in sorted(set(want) & set(state)):
        a = state[name]
        if tuple(a.shape) != want[name]:
            problems.append(f"tensor {name} has shape {list(a.shape)}, expected {list(want[name])}")
            continue
        integer = name.endswith("num_batches_tracked")
        if integer and a.dtype.kind != "i":
            problems.append(f"tensor {name} is {a.dtype}, expected an integer")
        if not integer:
            if a.dtype != np.float32:
                problems.append(f"tensor {name} is {a.dtype}, expected float32")
            elif not np.all(np.isfinite(a)):
                problems.append(f"tensor {name} holds NaN or infinite values")
            elif name.endswith("running_var") and np.any(a < 0):
                problems.append(f"tensor {name} holds negative variances")
    return problems


def identify(state, forced=None):
    candidates = [forced] if forced else list(MODELS)
    report = {}
    for key in candidates:
        problems = mismatches(state, MODELS[key])
        if not problems:
            return key
        report[key] = problems
    key = min(report, key=lambda k: len(report[k]))
    shown = report[key][:12]
    more = len(report[key]) - len(shown)
    lines = "\n  ".join(shown) + (f"\n  ... and {more} more" if more > 0 else "")
    what = f"the requested {MODELS[key]['title']}" if forced else (
        f"either network (MiniFASNetV2 or MiniFASNetV1SE); closest is {MODELS[key]['title']}")
    raise WeightFileError(f"the tensors do not match {what}, {len(report[key])} difference(s):\n  {lines}")


# --------------------------------------------------------------------------------------------------------------
# Folding and the ONNX graph

def bn_scale_shift(state, prefix):
    g = state[prefix + ".weight"].astype(np.float64)
    b = state[prefix + ".bias"].astype(np.float64)
    m = state[prefix + ".running_mean"].astype(np.float64)
    v = state[prefix + ".running_var"].astype(np.float64)
    scale = g / np.sqrt(v + BN_EPS)
    return scale, b - m * scale


def fold_conv(state, weight_name, bn_prefix):
    w = state[weight_name].astype(np.float64)
    scale, shift = bn_scale_shift(state, bn_prefix)
    return (w * scale.reshape(-1, 1, 1, 1)).astype(np.float32), shift.astype(np.float32)


def build_onnx(state, key, producer_version=""):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    spec = MODELS[key]
    nodes, inits = [], []
    counter = [0]

    def tensor(hint):
        counter[0] += 1
        return f"{hint}_{counter[0]}"

    def init(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def conv(x, name, w, b, k, s, p, groups):
        y = tensor(name)
        nodes.append(helper.make_node(
            "Conv", [x, init(name + ".weight", w), init(name + ".bias", b)], [y], name=name,
            kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p], dilations=[1, 1], group=groups))
        return y

    def op(kind, inputs, name, **attrs):
        y = tensor(name)
        nodes.append(helper.make_node(kind, inputs, [y], name=name, **attrs))
        return y

    x = "input"
    saved = []
    for layer in layer_plan(spec):
        kind = layer["kind"]
        if kind == "conv":
            n = layer["name"]
            w, b = fold_conv(state, n + ".conv.weight", n + ".bn")
            x = conv(x, n + ".conv", w, b, layer["k"], layer["s"], layer["p"], layer["groups"])
            if layer["prelu"]:
                slope = state[n + ".prelu.weight"].reshape(-1, 1, 1)
                x = op("PRelu", [x, init(n + ".prelu.slope", slope)], n + ".prelu")
        elif kind == "save":
            saved.append(x)
        elif kind == "add":
            x = op("Add", [saved.pop(), x], layer["name"] + ".add")
        elif kind == "se":
            n = layer["name"]
            pooled = op("GlobalAveragePool", [x], n + ".pool")
            w1, b1 = fold_conv(state, n + ".fc1.weight", n + ".bn1")
            h = conv(pooled, n + ".fc1", w1, b1, 1, 1, 0, 1)
            h = op("Relu", [h], n + ".relu")
            w2, b2 = fold_conv(state, n + ".fc2.weight", n + ".bn2")
            h = conv(h, n + ".fc2", w2, b2, 1, 1, 0, 1)
            h = op("Sigmoid", [h], n + ".sigmoid")
            x = op("Mul", [x, h], n + ".mul")
        elif kind == "head":
            x = op("Flatten", [x], "flatten", axis=1)
            scale, shift = bn_scale_shift(state, "bn")
            w = (state["linear.weight"].astype(np.float64) * scale.reshape(-1, 1)).astype(np.float32)
            x = op("Gemm", [x, init("linear.weight", w), init("linear.bias", shift.astype(np.float32))], "linear",
                   transB=1)
            zeros = np.zeros(layer["classes"], dtype=np.float32)  # prob has no bias; an explicit 0 for importers
            x = op("Gemm", [x, init("prob.weight", state["prob.weight"]), init("prob.bias", zeros)], "prob_linear",
                   transB=1)
            nodes.append(helper.make_node("Softmax", [x], ["prob"], name="softmax", axis=1))
    assert not saved
    graph = helper.make_graph(
        nodes, spec["title"].split(" ")[0],
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 80, 80])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, CLASSES])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=6,
                              producer_name="liveness-onnx.py", producer_version=producer_version)
    model.doc_string = (f"{spec['title']} from Silent-Face-Anti-Spoofing weights; BatchNorm folded. Input: 80x80 BGR "
                        "crop, raw 0..255, NCHW. Output prob: softmax over 3 classes, class 1 = real face.")
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main(argv):
    ap = argparse.ArgumentParser(description="MiniFASNet .pth (legacy torch format) -> ONNX for OpenCV dnn")
    ap.add_argument("input", help="the .pth weight file")
    ap.add_argument("output", help="the .onnx file to write (written to a temporary file, then renamed)")
    ap.add_argument("--model", choices=sorted(MODELS), help="require this network instead of recognising it")
    args = ap.parse_args(argv)
    try:
        state = strip_prefix(read_legacy_state_dict(args.input))
        key = identify(state, args.model)
    except (WeightFileError, OSError) as e:
        print(f"liveness-onnx: {args.input}: {e}", file=sys.stderr)
        return 1
    import onnx
    blob = build_onnx(state, key, producer_version=f"onnx {onnx.__version__}")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix="." + os.path.basename(args.output) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, args.output)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    with open(args.input, "rb") as f:
        src_sha = hashlib.sha256(f.read()).hexdigest()
    print(f"{args.output}: {MODELS[key]['title']}, {len(blob)} bytes, sha256 {hashlib.sha256(blob).hexdigest()} "
          f"(from {os.path.basename(args.input)} sha256 {src_sha})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
