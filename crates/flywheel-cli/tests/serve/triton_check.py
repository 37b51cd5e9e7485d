"""Calls a running `flywheel serve` with NVIDIA's tritonclient (HTTP), as a
Triton or KServe user would: liveness, readiness, the model repository
index, model metadata, and
inference with binary tensors and with JSON ones, each answer compared
exactly with what `flywheel predict` computed.

usage: triton_check.py HOST:PORT CASE.json
CASE: {"model", "version", "inputs": [{"name", "datatype", "data"}],
       "expected": {"prediction": [...], "probabilities": [[...]]?}}
"""

import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def tensors(case, binary):
    out = []
    for c in case["inputs"]:
        if c["datatype"] == "BYTES":
            arr = np.array([s.encode("utf-8") for s in c["data"]], dtype=np.object_)
        else:
            arr = np.array([np.nan if v is None else v for v in c["data"]], dtype=np.float64)
        t = httpclient.InferInput(c["name"], [len(arr)], c["datatype"])
        t.set_data_from_numpy(arr, binary_data=binary)
        out.append(t)
    return out


def check(result, case, request_id):
    expected = case["expected"]
    response = result.get_response()
    assert response["model_name"] == case["model"], response
    assert response["model_version"] == case["version"], response
    assert response["id"] == request_id, response
    got = result.as_numpy("prediction")
    if isinstance(expected["prediction"][0], str):
        # Binary BYTES come back as bytes, JSON ones as str.
        labels = [g.decode("utf-8") if isinstance(g, bytes) else g for g in got.tolist()]
        assert labels == expected["prediction"], "labels differ"
    else:
        want = np.array(expected["prediction"], dtype=np.float64)
        assert got.dtype == np.float64 and np.array_equal(got.view(np.uint64), want.view(np.uint64)), "values differ"
    if "probabilities" in expected:
        got = result.as_numpy("probabilities")
        want = np.array(expected["probabilities"], dtype=np.float64)
        assert got.shape == want.shape, (got.shape, want.shape)
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), "probabilities differ"


def main():
    url, case_path = sys.argv[1], sys.argv[2]
    with open(case_path) as f:
        case = json.load(f)
    name, version = case["model"], case["version"]
    client = httpclient.InferenceServerClient(url, verbose=bool(__import__("os").environ.get("TRITON_VERBOSE")))
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(name)
    assert client.is_model_ready(name, version)
    assert not client.is_model_ready("no-such-model")
    index = client.get_model_repository_index()
    assert {"name": name, "version": version, "state": "READY"} in index, index
    meta = client.get_model_metadata(name)
    assert meta["name"] == name and meta["versions"] == [version], meta
    assert [i["name"] for i in meta["inputs"]] == [c["name"] for c in case["inputs"]], meta
    assert [i["datatype"] for i in meta["inputs"]] == [c["datatype"] for c in case["inputs"]], meta
    outputs = [o["name"] for o in meta["outputs"]]
    for binary in (True, False):
        requested = [httpclient.InferRequestedOutput(o, binary_data=binary) for o in outputs]
        rid = "tc-%s" % binary
        check(client.infer(name, tensors(case, binary), request_id=rid, outputs=requested), case, rid)
    # No outputs named: tritonclient asks for all of them in binary.
    check(client.infer(name, tensors(case, True), model_version=version, request_id="all"), case, "all")
    try:
        client.infer("no-such-model", tensors(case, True))
        raise AssertionError("an unknown model was answered")
    except InferenceServerException as e:
        assert "no-such-model" in str(e) and name in str(e), str(e)
    print("tritonclient ok: %s@%s" % (name, version))


if __name__ == "__main__":
    main()
