#!/usr/bin/env python3
"""Writes the binary and derived files of the bad-input corpus.

    python3 crates/flywheel-cli/tests/corpus/make_fixtures.py target/debug/flywheel

Standard library only. Valid Parquet and model files are made by Flywheel
itself (ingest writes Parquet, train writes a model), then broken here:
truncated, garbled, fields set to what a bug once wrote (`"threshold":
null` for a non-finite split). ONNX files start from the recorded
scikit-learn exports in crates/flywheel-ml/tests/fixtures/onnx. Re-running
gives the same bytes for everything but the files Flywheel writes (their
metadata carries run ids and times); the cases only check messages, so a
fresh run keeps them valid.
"""

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
ONNX = os.path.join(REPO, "crates", "flywheel-ml", "tests", "fixtures", "onnx")

DATA = "x,y,color,label\n" + "".join(
    f"{i},{(i * 7) % 10}.5,{['red', 'blue', 'green'][i % 3]},{['yes', 'no'][(i // 3) % 2]}\n" for i in range(60)
)


def put(case, name, data):
    path = os.path.join(HERE, case, name)
    if not os.path.isdir(os.path.dirname(path)):
        sys.exit(f"{case}: no such case folder (write its case.toml first)")
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def flip(data, at, mask=0xFF):
    b = bytearray(data)
    b[at] ^= mask
    return bytes(b)


def gz(text):
    return gzip.compress(text.encode(), mtime=0)


def made_by_flywheel(flywheel):
    """A Parquet split and a trained gbt model, from a tiny pipeline."""
    tmp = tempfile.mkdtemp()
    try:
        with open(os.path.join(tmp, "d.csv"), "w") as f:
            f.write(DATA)
        with open(os.path.join(tmp, "p.toml"), "w") as f:
            f.write(
                '[pipeline]\nname = "fixtures"\n'
                '[steps.ingest]\ncomponent = "ingest"\nparams = { path = "d.csv" }\n'
                '[steps.train]\ncomponent = "train"\ninputs = { data = "ingest.train" }\n'
                'params = { target = "label", model = "gbt", max_iterations = 3, '
                'transform = { x = "standardize", color = "onehot(top = 2)" } }\n'
                '[steps.linear]\ncomponent = "train"\ninputs = { data = "ingest.train" }\n'
                'params = { target = "x", model = "linear", drop = ["label", "color"] }\n'
            )
        env = dict(os.environ, FLYWHEEL_HOME=os.path.join(tmp, "home"))
        run = lambda *a: subprocess.run([flywheel, *a], cwd=tmp, env=env, check=True, capture_output=True, text=True)
        run("run", "p.toml")
        show = json.loads(run("runs", "show", "1", "--json").stdout)
        out = {}
        for e in show["executions"]:
            uri = e["outputs"][0]["artifact"]["uri"].removeprefix("file://")
            with open(uri, "rb") as f:
                out[e["step"]] = f.read()
        return out["ingest"], out["train"], out["linear"]
    finally:
        shutil.rmtree(tmp)


def first_tree_node(model):
    return model["estimator"]["trees"][0][0]["nodes"][0]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    flywheel = os.path.abspath(sys.argv[1])
    parquet, gbt_bytes, linear_bytes = made_by_flywheel(flywheel)
    linear = json.loads(linear_bytes)
    dump = lambda m: json.dumps(m, indent=1)

    # CSV.gz
    good = gz(DATA)
    put("gz-truncated", "d.csv.gz", good[: len(good) // 2])
    put("gz-bad-checksum", "d.csv.gz", flip(good, len(good) - 6))
    put("gz-garbled-stream", "d.csv.gz", good[:10] + bytes((i * 37) % 256 for i in range(200)))
    put("gz-header-only", "d.csv.gz", gz("x,y\n"))
    put("gz-ragged-row", "d.csv.gz", gz("a,b\n1,2\n3\n"))
    put("gz-magic-only", "d.csv.gz", b"\x1f\x8b")

    # Parquet
    put("parquet-truncated", "d.parquet", parquet[: len(parquet) - 40])
    put("parquet-footer-garbled", "d.parquet", parquet[:-12] + bytes(8) + parquet[-4:])
    put("parquet-magic-only", "d.parquet", b"PAR1PAR1")
    put("parquet-garbage-between-magic", "d.parquet", b"PAR1" + bytes((i * 91) % 256 for i in range(300)) + b"PAR1")
    put("parquet-ingest-truncated", "d.parquet", parquet[: len(parquet) // 2])
    put("parquet-validate-truncated", "d.parquet", parquet[: len(parquet) // 3])

    # Model files
    m = json.loads(gbt_bytes)
    first_tree_node(m)["threshold"] = None
    put("model-threshold-null", "m.json", dump(m))
    put("model-threshold-null-predict", "m.json", dump(m))
    m = json.loads(linear_bytes)
    m["estimator"]["weights"][0] = None
    put("model-weight-null", "m.json", dump(m))
    put("model-weight-overflow", "m.json", dump(linear).replace('"intercept": ', '"intercept": 1e999, "_was": ', 1))
    m = json.loads(gbt_bytes)
    m["format"] = "flywheel.model/9"
    put("model-future-format", "m.json", dump(m))
    m = json.loads(linear_bytes)
    m["estimator"]["weights"] = m["estimator"]["weights"][:-1]
    put("model-weights-do-not-match-features", "m.json", dump(m))
    m = json.loads(gbt_bytes)
    m["signature"]["inputs"] = m["signature"]["inputs"][:1]
    put("model-signature-does-not-match-transform", "m.json", dump(m))
    m = json.loads(gbt_bytes)
    first_tree_node(m)["left"] = 4_000_000_000
    put("model-tree-child-out-of-range", "m.json", dump(m))
    put("model-truncated-json", "m.json", gbt_bytes[: len(gbt_bytes) // 2])
    # What `pickle.dumps(eval)` writes: loading it would import `builtins.eval`.
    pickle = b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94."
    put("model-pickle-bytes", "m.pkl", pickle)
    put("model-pickle-predict", "m.pkl", pickle)

    # ONNX
    with open(os.path.join(ONNX, "logistic_binary.onnx"), "rb") as f:
        onnx = f.read()
    put("onnx-truncated", "m.onnx", onnx[: len(onnx) // 2])
    put("onnx-garbage", "m.onnx", bytes((i * 53 + 7) % 256 for i in range(700)))
    put("onnx-flipped-bytes", "m.onnx", flip(flip(onnx, 40), 200))
    put("onnx-text-file", "m.onnx", "this is not a model\n")
    # Found by tests/mutation.rs: one byte of the weights' dimensions changed
    # makes tract's matmul assert during the import's trial prediction.
    put("onnx-weights-shape-panics-tract", "m.onnx", flip(onnx, 358, 0x2B))
    # Found by tests/mutation.rs: one byte of a node's input name changed, so
    # the sub-graph cut for tract reads a value whose shape is unknown.
    with open(os.path.join(ONNX, "mlp_regression.onnx"), "rb") as f:
        mlp = f.read()
    put("onnx-unknown-node-input-panics", "m.onnx", flip(mlp, 431, 0x17))
    put("onnx-predict-garbage", "m.onnx", bytes((i * 53 + 7) % 256 for i in range(700)))


if __name__ == "__main__":
    main()
