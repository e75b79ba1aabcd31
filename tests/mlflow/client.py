"""MLflow's own Python client, for the tests (run with the venv from venv.sh):

    client.py URI create-experiment NAME   prints the new experiment's id
    client.py URI traces EXPERIMENT_ID     prints every trace of the experiment as JSON:
        [{"trace_id", "tags" (MLflow keeps the OTel resource here), "spans": [{"name",
          "trace_id", "parent_span_id", "attributes"}]}]

Span attribute values come back JSON-encoded from MLflow; they are decoded here so that the
caller sees strings, booleans and lists.
"""
import json
import sys

import mlflow
from mlflow import MlflowClient


def decode(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def traces(experiment_id):
    out = []
    for t in mlflow.search_traces(locations=[experiment_id], return_type="list"):
        d = t.to_dict()
        spans = [
            {
                "name": s["name"],
                "trace_id": s["trace_id"],
                "parent_span_id": s.get("parent_span_id"),
                "attributes": {k: decode(v) for k, v in (s.get("attributes") or {}).items()},
            }
            for s in d["data"]["spans"]
        ]
        out.append({"trace_id": d["info"]["trace_id"], "tags": d["info"]["tags"], "spans": spans})
    return out


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in ("create-experiment", "traces"):
        sys.exit("usage: client.py URI create-experiment NAME | client.py URI traces EXPERIMENT_ID")
    uri, command, arg = sys.argv[1:]
    mlflow.set_tracking_uri(uri)
    if command == "create-experiment":
        print(MlflowClient().create_experiment(arg))
    else:
        json.dump(traces(arg), sys.stdout)


if __name__ == "__main__":
    main()
