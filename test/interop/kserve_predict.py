#!/usr/bin/env python3
"""Independent-client check for a chassis-ts KServe REST server (v1 and v2).

Usage: /usr/bin/python3 test/interop/kserve_predict.py BASE_URL [SAMPLE_JSON] [MODEL_NAME]

Talks to a server started with the digits example (`chassis serve
examples/digits --interface kserve` or `both`) using only the Python standard
library (urllib.request, base64, json), as a KServe v1 client written for a
Chassis container would:

- GET  /v1/models/{name}            -> 200 {"name": name, "ready": true}
- POST /v1/models/{name}:predict    with {"instances": [base64(sample bytes)]}
                                    (the Chassis convention) -> one prediction,
                                    a JSON text whose classPredictions[0].class is 1
- POST /v2/models/{name}/infer      with a BYTES tensor holding the sample text
- GET  /v1/models/no-such-model     -> 404 {"error": "Model with name ... does not exist."}

Prints one JSON line per check ({"check": ..., "ok": ..., "detail": ...}) and
exits 1 if any check failed (2 on a usage error).
"""

import base64
import json
import os
import sys
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SAMPLE = os.path.normpath(os.path.join(HERE, "..", "..", "examples", "digits", "sample.json"))
DEFAULT_MODEL = "digits-classifier"
EXPECTED_CLASS = 1
TIMEOUT = 10  # seconds per request

# Talk to the server directly, whatever http_proxy says.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

failures = []


def report(check, ok, detail=None):
    line = {"check": check, "ok": bool(ok)}
    if detail is not None:
        line["detail"] = detail
    print(json.dumps(line, default=repr), flush=True)
    if not ok:
        failures.append(check)


def run_check(name, fn):
    """Runs fn(); it returns a detail (ok) or raises (failure)."""
    try:
        report(name, True, fn())
    except AssertionError as error:
        report(name, False, str(error) or traceback.format_exc(limit=2))
    except Exception as error:  # noqa: BLE001 - every failure becomes a report line
        report(name, False, f"{type(error).__name__}: {error}")


def expect(actual, expected, what):
    assert actual == expected, f"{what}: expected {expected!r}, got {actual!r}"


def request(base, method, path, body=None):
    """Returns (HTTP status, parsed JSON body); HTTP errors are answers too."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {} if body is None else {"Content-Type": "application/json"}
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with OPENER.open(req, timeout=TIMEOUT) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw.decode("utf-8"))
    except ValueError:
        raise AssertionError(f"{method} {path} answered {status} with a body that is not JSON: {raw[:200]!r}")


def check_prediction(text, what):
    assert isinstance(text, str), f"{what} should be a JSON text (a string), got {type(text).__name__}: {text!r}"
    prediction = json.loads(text)
    top = prediction["classPredictions"][0]
    expect(top["class"], EXPECTED_CLASS, f"{what}: classPredictions[0].class")
    assert 0 < top["score"] <= 1, f"{what}: classPredictions[0].score out of range: {top['score']!r}"
    return top


def main(argv):
    if len(argv) not in (2, 3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    base = argv[1].rstrip("/")
    sample_path = argv[2] if len(argv) > 2 else DEFAULT_SAMPLE
    model = argv[3] if len(argv) > 3 else DEFAULT_MODEL
    with open(sample_path, "rb") as f:
        sample = f.read()

    def check_alive():
        status, body = request(base, "GET", "/")
        expect(status, 200, "GET / status")
        expect(body, {"status": "alive"}, "GET / body")
        return body

    run_check("alive", check_alive)

    def check_models():
        status, body = request(base, "GET", "/v1/models")
        expect(status, 200, "GET /v1/models status")
        expect(body, {"models": [model]}, "GET /v1/models body")
        return body

    run_check("v1_models", check_models)

    def check_ready():
        status, body = request(base, "GET", f"/v1/models/{model}")
        expect(status, 200, f"GET /v1/models/{model} status")
        expect(body, {"name": model, "ready": True}, f"GET /v1/models/{model} body")
        return body

    run_check("v1_model_ready", check_ready)

    def check_predict():
        payload = {"instances": [base64.b64encode(sample).decode("ascii")]}
        status, body = request(base, "POST", f"/v1/models/{model}:predict", payload)
        expect(status, 200, f"POST /v1/models/{model}:predict status ({body!r})")
        assert isinstance(body, dict) and isinstance(body.get("predictions"), list), f"no predictions list: {body!r}"
        expect(len(body["predictions"]), 1, "number of predictions")
        return check_prediction(body["predictions"][0], "predictions[0]")

    run_check("v1_predict", check_predict)

    def check_predict_batch():
        instance = base64.b64encode(sample).decode("ascii")
        status, body = request(base, "POST", f"/v1/models/{model}:predict", {"instances": [instance, instance]})
        expect(status, 200, f"POST /v1/models/{model}:predict status ({body!r})")
        expect(len(body["predictions"]), 2, "number of predictions for 2 instances")
        return [check_prediction(p, f"predictions[{i}]") for i, p in enumerate(body["predictions"])]

    run_check("v1_predict_batch", check_predict_batch)

    def check_v2_infer():
        payload = {
            "id": "python-interop-1",
            "inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "data": [sample.decode("utf-8")]}],
        }
        status, body = request(base, "POST", f"/v2/models/{model}/infer", payload)
        expect(status, 200, f"POST /v2/models/{model}/infer status ({body!r})")
        expect(body.get("model_name"), model, "model_name")
        expect(body.get("id"), "python-interop-1", "id (echoed)")
        outputs = body.get("outputs")
        assert isinstance(outputs, list) and len(outputs) == 1, f"expected one output tensor: {outputs!r}"
        output = outputs[0]
        expect(output.get("name"), "results.json", "outputs[0].name")
        expect(output.get("datatype"), "BYTES", "outputs[0].datatype")
        expect(output.get("shape"), [1], "outputs[0].shape")
        return check_prediction(output["data"][0], "outputs[0].data[0]")

    run_check("v2_infer", check_v2_infer)

    def check_unknown_model():
        status, body = request(base, "GET", "/v1/models/no-such-model")
        expect(status, 404, "GET /v1/models/no-such-model status")
        expect(body, {"error": "Model with name no-such-model does not exist."}, "404 body")
        return body

    run_check("v1_unknown_model", check_unknown_model)

    print(json.dumps({"summary": True, "failures": failures}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
