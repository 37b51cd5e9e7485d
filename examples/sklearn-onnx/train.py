"""Trains a scikit-learn model and hands it to Flywheel as ONNX.

Flywheel runs this as a `command` step: the training rows arrive as
$FLYWHEEL_INPUT_DATA (Parquet), and the model goes to $FLYWHEEL_OUTPUT_MODEL.
The file is plain ONNX (skl2onnx's export) with one addition, the
signature in its metadata: which columns feed it and what it predicts.
Flywheel then evaluates, blesses, registers and serves it like a model it
trained itself, and never runs Python to do so.

    pip install pandas pyarrow scikit-learn skl2onnx
"""

import json
import os

import numpy as np
import pandas as pd
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline

FEATURES = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
TARGET = "income"

train = pd.read_parquet(os.environ["FLYWHEEL_INPUT_DATA"])
x = train[FEATURES].to_numpy(np.float32)
y = train[TARGET].astype(str).to_numpy()

model = make_pipeline(
    SimpleImputer(),
    RandomForestClassifier(
        n_estimators=int(os.environ.get("TREES", "50")), max_depth=10, random_state=0, n_jobs=-1
    ),
)
model.fit(x, y)

onx = to_onnx(model, x[:1])
onx.metadata_props.add(key="flywheel.signature", value=json.dumps({"inputs": FEATURES, "target": TARGET}))
with open(os.environ["FLYWHEEL_OUTPUT_MODEL"], "wb") as f:
    f.write(onx.SerializeToString())
print(f"trained on {len(train)} rows; wrote {len(onx.graph.node)} ONNX nodes")
