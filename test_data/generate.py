#!/usr/bin/env python3
"""Regenerates the fixtures in test_data/ from the DittoFS sample objects.

The outputs are committed; run this only to change them:
    python3 test_data/generate.py ../shared/dittofs
Requests are bare AdmissionRequests; sessions use kwctl's replay format.
All credentials are fake.
"""

import base64
import copy
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
NAMESPACE = "dittofs-system"
SECRET_NAME = "dittofs-s3-credentials"
FAKE_ACCESS_KEY_ID = "FAKE-ACCESS-KEY-ID-0000"
FAKE_SECRET_ACCESS_KEY = "FAKE-SECRET-ACCESS-KEY-DO-NOT-USE"
DITTOSERVER_GVK = {"group": "dittofs.dittofs.com", "version": "v1alpha1", "kind": "DittoServer"}
DITTOSERVER_GVR = {"group": "dittofs.dittofs.com", "version": "v1alpha1", "resource": "dittoservers"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_json(name: str, value) -> None:
    (HERE / name).write_text(json.dumps(value, indent=2) + "\n")


def admission_request(uid, gvk, gvr, obj, operation="CREATE", old=None):
    options_kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}[operation]
    return {
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": obj["metadata"].get("name", "") if obj else old["metadata"]["name"],
        "namespace": NAMESPACE,
        "operation": operation,
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1"},
    }


def secret_payload(data, name=SECRET_NAME):
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE, "resourceVersion": "1001",
                     "uid": "4f0f8c6e-0000-4000-8000-000000000001"},
        "type": "Opaque",
        "data": data,
    }, separators=(",", ":"))


def get_resource_request(api_version, kind, name):
    return (f"!KubernetesGetResource\napi_version: {api_version}\nkind: {kind}\n"
            f"name: {name}\nnamespace: {NAMESPACE}\ndisable_cache: false\n")


def exchange(api_version, kind, name, *, payload=None, error=None):
    response = {"type": "Success", "payload": payload} if error is None else {"type": "Error", "message": error}
    return {"type": "Exchange", "request": get_resource_request(api_version, kind, name), "response": response}


def secret_exchange(*, data=None, error=None, raw=None, name=SECRET_NAME):
    payload = raw if raw is not None else (secret_payload(data, name) if error is None else None)
    return exchange("v1", "Secret", name, payload=payload, error=error)


def not_found(api_version, kind, name):
    return (f"Cannot find {api_version}/{kind} named '{name}' inside of namespace "
            f"'Some(\"{NAMESPACE}\")'")


def write_session(name, exchanges):
    class Literal(str):
        pass

    yaml.add_representer(Literal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|"))
    entries = [dict(e, request=Literal(e["request"])) for e in exchanges]
    (HERE / name).write_text(yaml.dump(entries, sort_keys=False, width=1000))


GOOD_DATA = {
    "accessKeyId": b64(FAKE_ACCESS_KEY_ID),
    "secretAccessKey": b64(FAKE_SECRET_ACCESS_KEY),
    "endpoint": b64("https://s3.cubbit.eu"),
}


def dittoserver_fixtures(sample):
    sample.setdefault("metadata", {})["uid"] = "7d1e3c2a-0000-4000-8000-000000000001"

    def request(name, obj, operation="CREATE", old=None):
        write_json(name, admission_request(name.removesuffix(".json"), DITTOSERVER_GVK, DITTOSERVER_GVR, obj, operation, old))

    def variant(s3):
        obj = copy.deepcopy(sample)
        if s3 is None:
            obj["spec"].pop("s3", None)
        else:
            obj["spec"]["s3"] = s3
        return obj

    ref = {"secretName": SECRET_NAME}
    request("dittoserver-sample-create.json", copy.deepcopy(sample))
    updated = copy.deepcopy(sample)
    updated["metadata"]["generation"] = 2
    updated["spec"]["replicas"] = 2
    request("dittoserver-sample-update.json", updated, "UPDATE", copy.deepcopy(sample))
    request("dittoserver-no-s3.json", variant(None))
    request("dittoserver-defaults.json", variant({"credentialsSecretRef": dict(ref)}))
    request("dittoserver-region-bucket-without-ref.json", variant({"region": "eu-west-1", "bucket": "dittofs-data"}))
    request("dittoserver-custom-keys.json", variant({"credentialsSecretRef": dict(ref, accessKeyIdKey="id", secretAccessKeyKey="key", endpointKey="url")}))
    request("dittoserver-ref-without-name.json", variant({"credentialsSecretRef": {"accessKeyIdKey": "id"}}))
    request("dittoserver-bad-secret-name.json", variant({"credentialsSecretRef": {"secretName": "S3_Credentials"}}))
    request("dittoserver-bad-key-name.json", variant({"credentialsSecretRef": dict(ref, secretAccessKeyKey="secret/key")}))
    request("dittoserver-duplicate-keys.json", variant({"credentialsSecretRef": dict(ref, accessKeyIdKey="key", secretAccessKeyKey="key")}))
    request("dittoserver-bad-region.json", variant({"credentialsSecretRef": dict(ref), "region": "EU_West_1"}))
    request("dittoserver-region-fr-par.json", variant({"credentialsSecretRef": dict(ref), "region": "fr-par"}))
    request("dittoserver-bucket-ip.json", variant({"credentialsSecretRef": dict(ref), "bucket": "192.168.1.10"}))
    request("dittoserver-bucket-reserved-prefix.json", variant({"credentialsSecretRef": dict(ref), "bucket": "xn--dittofs"}))
    request("dittoserver-bucket-reserved-suffix.json", variant({"credentialsSecretRef": dict(ref), "bucket": "dittofs--ol-s3"}))
    request("dittoserver-bucket-uppercase.json", variant({"credentialsSecretRef": dict(ref), "bucket": "DittoFS-Data"}))
    request("dittoserver-s3-wrong-type.json", variant("s3://dittofs-data"))
    s3_null = variant(None)
    s3_null["spec"]["s3"] = None
    request("dittoserver-s3-null.json", s3_null)
    request("dittoserver-ref-wrong-type.json", variant({"credentialsSecretRef": [SECRET_NAME]}))
    request("dittoserver-region-number.json", variant({"credentialsSecretRef": dict(ref), "region": 1}))
    deleting = variant({"region": "INVALID"})
    deleting["metadata"]["deletionTimestamp"] = "2026-11-28T00:00:00Z"
    deleting["metadata"]["finalizers"] = []
    request("dittoserver-being-deleted.json", deleting, "UPDATE", variant({"region": "INVALID"}))

    write_session("session-empty.yml", [])
    write_session("session-secret-found.yml", [secret_exchange(data=GOOD_DATA)])
    write_session("session-secret-found-no-endpoint.yml", [secret_exchange(data={k: v for k, v in GOOD_DATA.items() if k != "endpoint"})])
    write_session("session-secret-missing.yml", [secret_exchange(error=not_found("v1", "Secret", SECRET_NAME))])
    write_session("session-secret-incomplete.yml", [secret_exchange(data={"accessKeyId": "", "unrelated": b64("other")})])
    write_session("session-secret-not-base64.yml", [secret_exchange(data=dict(GOOD_DATA, secretAccessKey="%%not-base64%%"))])
    write_session("session-secret-http-endpoint.yml", [secret_exchange(data=dict(GOOD_DATA, endpoint=b64("http://minio.storage.svc:9000")))])
    write_session("session-secret-relative-endpoint.yml", [secret_exchange(data=dict(GOOD_DATA, endpoint=b64("s3.cubbit.eu")))])
    write_session("session-secret-aws-endpoint.yml", [secret_exchange(data=dict(GOOD_DATA, endpoint=b64("https://s3.eu-west-1.amazonaws.com")))])
    write_session("session-secret-denied.yml", [secret_exchange(error=(
        f"secrets \"{SECRET_NAME}\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server-default\" "
        f"cannot get resource \"secrets\" in API group \"\" in the namespace \"{NAMESPACE}\""))])
    write_session("session-secret-api-error.yml", [secret_exchange(error="etcdserver: request timed out")])
    write_session("session-secret-garbage.yml", [secret_exchange(raw="{this is not json")])
    write_session("session-secret-custom-keys.yml", [secret_exchange(data={
        "id": b64(FAKE_ACCESS_KEY_ID), "key": b64(FAKE_SECRET_ACCESS_KEY), "url": b64("https://s3.acme.cubbit.eu")})])


def main():
    shared = Path(sys.argv[1] if len(sys.argv) > 1 else HERE.parent.parent / "shared" / "dittofs")
    sample = yaml.safe_load((shared / "sample-dittoserver-s3.yaml").read_text())
    dittoserver_fixtures(sample)


if __name__ == "__main__":
    main()
