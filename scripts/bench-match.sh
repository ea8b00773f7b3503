#!/usr/bin/env bash
# make bench-match: FaceMatch's exact search against faiss (IndexFlatL2, the same
# metric: Euclidean distance between the vectors as given, dlib's) and the
# memory-bandwidth floor, one thread, in one run. d = 128; N = 1e3 .. 1e6;
# batch 1 and 8; k 1 and 5. Prints a table, then one line per configuration:
#   facematch n=N batch=B k=K ours_ns=X faiss_ns=Y floor_ns=Z
# (ns per query x vector, medians; floor only where measured: N = 1e6, whose
# 512 MB gallery is exactly the streamed array), then the int8 / fp16 figures.
# Each figure is the median over ROUNDS rounds of the median of REPS repetitions;
# ours and faiss alternate within every round and size, so a change in the load of
# this shared machine hits both sides alike.
# Environment: SIZES=1000,10000 REPS=5 ROUNDS=3; FACEMATCH_SCRATCH, FACEMATCH_VENV.
set -euo pipefail
cd "$(dirname "$0")/.."

SCRATCH=${FACEMATCH_SCRATCH:-.build-match}
VENV=${FACEMATCH_VENV:-.venv-bench}
SIZES=${SIZES:-1000,10000,100000,1000000}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-3}

swift build -c release --scratch-path "$SCRATCH" --product match-bench >&2
BIN=$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/match-bench

if ! "$VENV/bin/python" -c 'import faiss, numpy' 2>/dev/null; then
    echo "bench-match: installing faiss-cpu and numpy into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet faiss-cpu numpy >&2
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for round in $(seq 1 "$ROUNDS"); do
for n in ${SIZES//,/ }; do
    echo "bench-match: round $round/$ROUNDS n=$n ours" >&2
    "$BIN" --sizes "$n" --reps "$REPS" >>"$work/ours.txt"
    echo "bench-match: round $round/$ROUNDS n=$n faiss" >&2
    "$VENV/bin/python" - "$n" "$REPS" >>"$work/faiss.txt" <<'PY'
import sys, time
import numpy as np
import faiss

faiss.omp_set_num_threads(1)
n, reps, d = int(sys.argv[1]), int(sys.argv[2]), 128
rng = np.random.default_rng(42 + n)
# Shaped like dlib descriptors, as match-bench: random directions, norms around 1.38.
xb = rng.standard_normal((n, d), dtype=np.float32)
xb /= np.linalg.norm(xb, axis=1, keepdims=True)
xb *= (1.38 + 0.05 * rng.standard_normal((n, 1))).astype(np.float32)
xb = np.ascontiguousarray(xb, dtype=np.float32)
index = faiss.IndexFlatL2(d)
index.add(xb)
# Genuine queries, as match-bench: an enrolled row plus noise (distance about 0.35).
nq = max(16, min(512, 2_000_000 // n))
src = rng.integers(0, n, nq)
xq = xb[src] + (0.35 / np.sqrt(d)) * rng.standard_normal((nq, d), dtype=np.float32)
xq = np.ascontiguousarray(xq, dtype=np.float32)
for k in (1, 5):
    for batch in (1, 8):
        groups = [xq[i:i + batch] for i in range(0, nq - batch + 1, batch)]
        times = []
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            for g in groups:
                index.search(g, k)
            times.append((time.perf_counter_ns() - t0) / (len(groups) * batch * n))
        print(f"faiss n={n} batch={batch} k={k} ns={float(np.median(times)):.3f} version={faiss.__version__}")
PY
done
done

"$VENV/bin/python" - "$work/ours.txt" "$work/faiss.txt" "$ROUNDS" "$REPS" <<'PY'
import sys, statistics

def fields(line):
    return dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)

ours, faiss, floors, recall, isa = {}, {}, [], {}, ""
for line in open(sys.argv[1]):
    f = fields(line)
    if line.startswith("isa"):
        isa = f"{f['active']} (detected {f['detected']})"
    elif line.startswith("floor"):
        floors.append((float(f["ns_per_vector"]), float(f["gbps"])))
    elif line.startswith("ours"):
        ours.setdefault((f["storage"], int(f["n"]), int(f["batch"]), int(f["k"])), []).append(float(f["ns"]))
    elif line.startswith("recall"):
        r = recall.setdefault((f["storage"], int(f["n"]), int(f["k"])), [])
        r.append((f["recall1"], f["exact"], f["queries"]))
for line in open(sys.argv[2]):
    f = fields(line)
    faiss.setdefault((int(f["n"]), int(f["batch"]), int(f["k"])), []).append(float(f["ns"]))
    fversion = f["version"]
ours = {key: statistics.median(v) for key, v in ours.items()}
faiss = {key: statistics.median(v) for key, v in faiss.items()}
# Recall and exactness must hold in every round: report the worst.
recall = {key: (min(x[0] for x in v), min(x[1] for x in v), v[0][2]) for key, v in recall.items()}

floor = statistics.median(x[0] for x in floors)
gbps = statistics.median(x[1] for x in floors)
print(f"\nFaceMatch exact search, d=128, one thread, kernels: {isa}; faiss-cpu {fversion} IndexFlatL2 (from Python)")
print(f"memory-bandwidth floor: stream 512 MB = {floor * 1e6 / 1e6:.1f} ms ({gbps:.2f} GB/s) = {floor:.2f} ns per 512-byte vector; "
      f"median of {len(floors)} runs")
print(f"ns per query x vector: median over {sys.argv[3]} round(s) of the median of {sys.argv[4]} repetitions\n")
print(f"{'n':>8} {'batch':>5} {'k':>2} {'ours':>8} {'faiss':>8} {'ours/faiss':>10} {'floor':>7} {'floor/ours':>10}")
lines = []
for (storage, n, b, k), x in sorted(ours.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][3])):
    if storage != "float32":
        continue
    y = faiss.get((n, b, k))
    fl = floor / b if n == 1_000_000 else None
    ratio = f"{x / y:10.2f}" if y else f"{'-':>10}"
    print(f"{n:>8} {b:>5} {k:>2} {x:8.2f} {y if y else float('nan'):8.2f} {ratio} "
          + (f"{fl:7.2f} {fl / x:10.2f}" if fl else f"{'-':>7} {'-':>10}"))
    lines.append(f"facematch n={n} batch={b} k={k} ours_ns={x:.2f} faiss_ns={y:.2f}" + (f" floor_ns={fl:.2f}" if fl else ""))
print()
print("compact storage (batch 1): scan int8 / fp16, re-rank in float32; recall1 = top-1 is the enrolled student, "
      "exact = answer identical to the float32 search")
compact = []
for (storage, n, b, k), x in sorted(ours.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][3])):
    if storage == "float32" or b != 1:
        continue
    base = ours.get(("float32", n, 1, k))
    r1, ex, nq = recall.get((storage, n, k), ("?", "?", "?"))
    compact.append(f"facematch-{storage} n={n} k={k} {storage}_ns={x:.2f} float_ns={base:.2f} "
                   f"ratio={x / base:.3f} recall1={r1} exact={ex} queries={nq}")
print("\n".join(lines))
print("\n".join(compact))
PY
