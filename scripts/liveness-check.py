#!/usr/bin/python3
"""Checks the liveness ONNX models in OpenCV's dnn against the reference outputs of the original implementation.

    /usr/bin/python3 scripts/liveness-check.py [--models Models] [--samples DIR] [--tolerance 2e-6]

Run it with Debian's python3 and python3-opencv (OpenCV 4.6, the version the Swift side links), not a PyPI
opencv. For each sample frame in DIR/expected.json (default: $MODELS_FROM/liveness/samples, else
../shared/models/liveness/samples) it feeds each model its reference 80x80 crop (DIR/crops/*.png, BGR as imread
gives it, raw 0..255, no mean, no swap) through cv2.dnn.readNetFromONNX, prints the probabilities and their max
abs difference from the reference implementation's, then the combined decision (P = probA + probB, label =
argmax P, REAL iff label == 1, score = P[label]/2) against the expected one.
expected.json holds the probabilities rounded to 6 decimals, so up to 5e-7 of any difference is that rounding.
Exit status 0 when every difference is within the tolerance and every decision and score matches, else 1.
"""
import argparse
import json
import os
import sys

import importlib.util

import numpy as np

try:
    import cv2
except ImportError:
    sys.exit("liveness-check: no cv2 here; run it with /usr/bin/python3 after 'apt-get install python3-opencv' "
             "(Debian's OpenCV 4.6, as the Swift side uses)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_converter():
    spec = importlib.util.spec_from_file_location("liveness_onnx", os.path.join(ROOT, "scripts", "liveness-onnx.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def conv2d(x, w, stride, pad, groups):
    """float64 convolution of x [C,H,W] with w [O,C/groups,k,k]; groups is 1 or C (depthwise)."""
    c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((o, ho, wo))
    for ky in range(k):
        for kx in range(k):
            patch = xp[:, ky:ky + stride * (ho - 1) + 1:stride, kx:kx + stride * (wo - 1) + 1:stride]
            if groups == 1:
                out += np.einsum("oc,chw->ohw", w[:, :, ky, kx], patch)
            else:
                assert groups == c == o
                out += w[:, 0, ky, kx][:, None, None] * patch
    return out


def reference_forward(conv_mod, state, key, crop):
    """The network straight from the .pth in float64, BatchNorm unfolded (as the original runs it in eval mode)."""
    st = {n: v.astype(np.float64) for n, v in state.items()}

    def bn(x, prefix):
        g, b, m, v = (st[prefix + s] for s in (".weight", ".bias", ".running_mean", ".running_var"))
        shape = (-1,) + (1,) * (x.ndim - 1)
        return (x - m.reshape(shape)) / np.sqrt(v.reshape(shape) + conv_mod.BN_EPS) * g.reshape(shape) + b.reshape(shape)

    x = crop.transpose(2, 0, 1).astype(np.float64)
    saved = []
    for layer in conv_mod.layer_plan(conv_mod.MODELS[key]):
        kind, n = layer["kind"], layer.get("name")
        if kind == "conv":
            x = bn(conv2d(x, st[n + ".conv.weight"], layer["s"], layer["p"], layer["groups"]), n + ".bn")
            if layer["prelu"]:
                x = np.where(x > 0, x, x * st[n + ".prelu.weight"][:, None, None])
        elif kind == "save":
            saved.append(x)
        elif kind == "add":
            x = saved.pop() + x
        elif kind == "se":
            h = x.mean(axis=(1, 2))
            h = np.maximum(bn(st[n + ".fc1.weight"][:, :, 0, 0] @ h, n + ".bn1"), 0)
            h = bn(st[n + ".fc2.weight"][:, :, 0, 0] @ h, n + ".bn2")
            x = x * (1 / (1 + np.exp(-h)))[:, None, None]
        elif kind == "head":
            e = bn(st["linear.weight"] @ x.reshape(-1), "bn")
            z = st["prob.weight"] @ e
            z = np.exp(z - z.max())
            return z / z.sum()


def default_samples():
    base = os.environ.get("MODELS_FROM") or os.path.join(ROOT, "..", "shared", "models")
    return os.path.normpath(os.path.join(base, "liveness", "samples"))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=os.path.join(ROOT, "Models"), help="folder with the .onnx files")
    ap.add_argument("--samples", default=default_samples(), help="folder with expected.json and crops/")
    ap.add_argument("--weights", help="folder with the .pth files, for a float64 numpy run of each network "
                    "from its weights (default: the samples folder's parent, when the .pth files are there)")
    ap.add_argument("--tolerance", type=float, default=2e-6, help="largest accepted abs difference per probability")
    args = ap.parse_args(argv)

    with open(os.path.join(args.samples, "expected.json")) as f:
        expected = json.load(f)
    print(f"OpenCV {cv2.__version__} (expected.json made with {expected.get('opencv', '?')}), "
          f"models from {args.models}, samples from {args.samples}")
    if not cv2.__version__.startswith("4.6."):
        print(f"warning: this is OpenCV {cv2.__version__}; the project runs the models in Debian's 4.6")

    weights = args.weights or os.path.dirname(os.path.normpath(args.samples))
    conv_mod = load_converter()
    states = {}
    nets = {}
    ok = True
    worst = {}
    worst64 = {}
    for img in expected["images"]:
        combined = np.zeros(3, dtype=np.float64)
        print(f"\n{img['image']}:")
        for model_file, ref in img["models"].items():
            if model_file not in nets:
                path = os.path.join(args.models, model_file)
                nets[model_file] = cv2.dnn.readNetFromONNX(path)
            net = nets[model_file]
            crop = cv2.imread(os.path.join(args.samples, ref["crop_png"]), cv2.IMREAD_COLOR)
            if crop is None or crop.shape != (80, 80, 3):
                print(f"  cannot read the 80x80 crop {ref['crop_png']}")
                ok = False
                continue
            blob = cv2.dnn.blobFromImage(crop, 1.0, (80, 80), (0, 0, 0), swapRB=False, crop=False)
            net.setInput(blob, "input")
            prob = net.forward().reshape(-1).astype(np.float64)
            torch_ref = np.array(ref["prob_torch_reference"], dtype=np.float64)
            diff = float(np.max(np.abs(prob - torch_ref)))
            diff_cv = float(np.max(np.abs(prob - np.array(ref["prob_opencv_onnx"], dtype=np.float64))))
            worst[model_file] = max(worst.get(model_file, 0.0), diff)
            good = diff <= args.tolerance
            ok &= good
            print(f"  {model_file:34s} prob {' '.join(f'{p:.6f}' for p in prob)}  max|d| vs torch {diff:.2e}"
                  f"  (vs reference OpenCV run {diff_cv:.2e})  {'ok' if good else 'TOO FAR'}")
            pth = os.path.join(weights, os.path.splitext(model_file)[0] + ".pth")
            if os.path.exists(pth):
                if pth not in states:
                    st = conv_mod.strip_prefix(conv_mod.read_legacy_state_dict(pth))
                    states[pth] = (st, conv_mod.identify(st))
                ref64 = reference_forward(conv_mod, states[pth][0], states[pth][1], crop)
                d64 = float(np.max(np.abs(prob - ref64)))
                worst64[model_file] = max(worst64.get(model_file, 0.0), d64)
                good = d64 <= args.tolerance
                ok &= good
                print(f"  {'':34s} numpy float64 run of the .pth {' '.join(f'{p:.8f}' for p in ref64)}  "
                      f"max|d| {d64:.2e} (vs torch {float(np.max(np.abs(ref64 - torch_ref))):.1e})  "
                      f"{'ok' if good else 'TOO FAR'}")
            combined += prob
        label = int(np.argmax(combined))
        decision = "REAL" if label == 1 else "FAKE"
        score = combined[label] / 2
        mean = combined / 2
        same = (label == img["label"] and decision == img["decision"] and round(score, 4) == img["score"])
        mean_diff = float(np.max(np.abs(mean - np.array(img["combined_mean_prob"]))))
        ok &= same
        print(f"  combined: {decision} {score:.4f} (label {label}, mean prob {' '.join(f'{p:.6f}' for p in mean)}, "
              f"max|d| {mean_diff:.1e}); expected {img['decision']} {img['score']:.4f} (label {img['label']}, "
              f"repo: {img.get('repo_published_result', '?')})  {'same' if same else 'DIFFERENT'}")
    print("\nlargest difference per model: " + ", ".join(f"{m} {d:.2e}" for m, d in worst.items()))
    if worst64:
        print("largest difference per model, OpenCV vs the float64 run of the weights (no rounding): "
              + ", ".join(f"{m} {d:.2e}" for m, d in worst64.items()))
    print("all within tolerance and the same decisions" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
