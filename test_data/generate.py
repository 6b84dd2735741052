#!/usr/bin/env python3
"""Regenerates the fixtures in test_data/ from the DittoFS sample objects.

The outputs are committed; run this only to change them:
    python3 test_data/generate.py ../shared/dittofs
Requests are bare AdmissionRequests; sessions use kwctl's replay format.
All credentials are fake.
"""

import base64
import copy
import hashlib
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


def object_name(obj):
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    return metadata.get("name", "") if isinstance(metadata, dict) else ""


ADMIN = {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
SERVICE_ACCOUNT = {"username": "system:serviceaccount:gitops:argocd-application-controller",
                   "uid": "5a1e0c3d-0000-4000-8000-000000000003",
                   "groups": ["system:serviceaccounts", "system:serviceaccounts:gitops", "system:authenticated"]}


def admission_request(uid, gvk, gvr, obj, operation="CREATE", old=None, user=ADMIN):
    options_kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}[operation]
    return {
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": object_name(obj) or object_name(old),
        "namespace": NAMESPACE,
        "operation": operation,
        "userInfo": user,
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


# The fields the policy asks for (field_masks, sorted as the SDK's set serializes them).
SECRET_FIELDS = ["data.accessKeyId", "data.endpoint", "data.secretAccessKey"]
DITTOSERVER_FIELDS = ["spec.s3"]


def get_resource_request(api_version, kind, name, fields):
    """The owning DittoServer is read from the API server itself (disable_cache), Secrets through the cache."""
    masks = "".join(f"- {field}\n" for field in sorted(fields))
    fresh = "true" if kind == "DittoServer" else "false"
    return (f"!KubernetesGetResource\napi_version: {api_version}\nkind: {kind}\n"
            f"name: {name}\nnamespace: {NAMESPACE}\ndisable_cache: {fresh}\nfield_masks:\n{masks}")


def prune(payload, fields):
    """What a Kubewarden >= 1.33 host returns: apiVersion, kind and metadata whole, of the body only
    the listed dot paths. Payloads that are not JSON objects are returned as they are."""
    try:
        obj = json.loads(payload)
    except (TypeError, ValueError):
        return payload
    if not isinstance(obj, dict):
        return payload

    def keep(value, paths):
        if any(not path for path in paths):
            return value
        if isinstance(value, dict):
            kept = {}
            for key, child in value.items():
                below = [path[1:] for path in paths if path[0] == key]
                if below:
                    kept[key] = keep(child, below)
            return kept
        if isinstance(value, list):
            return [keep(item, paths) for item in value]
        return value

    paths = [field.split(".") for field in fields]
    body = keep({k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}, paths)
    head = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    return json.dumps(dict(head, **body), separators=(",", ":"))


def exchange(api_version, kind, name, *, payload=None, error=None, fields=None, masked_host=True):
    """A get_resource exchange; `masked_host=False` answers like a host older than 1.33, which
    ignores the masks and returns the whole object."""
    fields = fields or (SECRET_FIELDS if kind == "Secret" else DITTOSERVER_FIELDS)
    if error is None:
        response = {"type": "Success", "payload": prune(payload, fields) if masked_host else payload}
    else:
        response = {"type": "Error", "message": error}
    return {"type": "Exchange", "request": get_resource_request(api_version, kind, name, fields), "response": response}


EMPTY_YAML_STRING = "''"


def access_exchange(*, allowed=True, error=None, user=ADMIN, name=SECRET_NAME):
    """kubernetes/can_i for `get` on the Secret, as kwctl 1.35 records it (groups sorted, as the policy sends them)."""
    groups = "".join(f"  - {group}\n" for group in sorted(user.get("groups", [])))
    request = (f"!KubernetesCanI\nrequest:\n  groups:\n{groups}  resource_attributes:\n    group: ''\n"
               f"    name: {name}\n    namespace: {NAMESPACE}\n    resource: secrets\n    subresource: null\n"
               f"    verb: get\n    version: v1\n  user: {user['username'] or EMPTY_YAML_STRING}\ndisable_cache: false\n")
    status = {"allowed": allowed} if allowed else {"allowed": False, "reason": "no RBAC policy matched"}
    response = ({"type": "Success", "payload": json.dumps(status, separators=(",", ":"))} if error is None
                else {"type": "Error", "message": error})
    return {"type": "Exchange", "request": request, "response": response}


# The Secrets the sample DittoServer names, in the order the policy asks about its author's
# access: spec.s3's, then spec.identity.admin's and spec.identity.jwt's.
SAMPLE_SECRETS = [SECRET_NAME, "dittofs-admin-secret", "dittofs-jwt-secret"]


def access_exchanges(*, user=ADMIN, refused=(), error=None, names=SAMPLE_SECRETS):
    """The author's access to every Secret the DittoServer names (the sample's by default):
    allowed but for `refused`, or every question failing with `error`."""
    return [access_exchange(allowed=name not in refused, error=error, user=user, name=name) for name in names]


ACCESS_OK = access_exchanges()


def secret_exchange(*, data=None, error=None, raw=None, name=SECRET_NAME, fields=None, masked_host=True):
    payload = raw if raw is not None else (secret_payload(data, name) if error is None else None)
    return exchange("v1", "Secret", name, payload=payload, error=error, fields=fields, masked_host=masked_host)


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
    # An UPDATE that moves the data to another bucket: spec.s3 changes, so it is judged again.
    previous = copy.deepcopy(sample)
    previous["spec"]["s3"]["bucket"] = "dittofs-archive"
    updated = copy.deepcopy(sample)
    updated["metadata"]["generation"] = 2
    updated["spec"]["replicas"] = 2
    request("dittoserver-sample-update.json", updated, "UPDATE", previous)
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
    write_session("session-secret-found.yml", [*ACCESS_OK, secret_exchange(data=GOOD_DATA)])
    write_session("session-secret-found-no-endpoint.yml", [*ACCESS_OK, secret_exchange(data={k: v for k, v in GOOD_DATA.items() if k != "endpoint"})])
    write_session("session-secret-missing.yml", [*ACCESS_OK, secret_exchange(error=not_found("v1", "Secret", SECRET_NAME))])
    write_session("session-secret-incomplete.yml", [*ACCESS_OK, secret_exchange(data={"accessKeyId": "", "unrelated": b64("other")})])
    write_session("session-secret-not-base64.yml", [*ACCESS_OK, secret_exchange(data=dict(GOOD_DATA, secretAccessKey="%%not-base64%%"))])
    write_session("session-secret-http-endpoint.yml", [*ACCESS_OK, secret_exchange(data=dict(GOOD_DATA, endpoint=b64("http://minio.storage.svc:9000")))])
    write_session("session-secret-relative-endpoint.yml", [*ACCESS_OK, secret_exchange(data=dict(GOOD_DATA, endpoint=b64("s3.cubbit.eu")))])
    write_session("session-secret-aws-endpoint.yml", [*ACCESS_OK, secret_exchange(data=dict(GOOD_DATA, endpoint=b64("https://s3.eu-west-1.amazonaws.com")))])
    write_session("session-secret-denied.yml", [*ACCESS_OK, secret_exchange(error=(
        f"secrets \"{SECRET_NAME}\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server-default\" "
        f"cannot get resource \"secrets\" in API group \"\" in the namespace \"{NAMESPACE}\""))])
    write_session("session-secret-api-error.yml", [*ACCESS_OK, secret_exchange(error="etcdserver: request timed out")])
    write_session("session-secret-garbage.yml", [*ACCESS_OK, secret_exchange(raw="{this is not json")])
    write_session("session-secret-custom-keys-missing.yml", [*ACCESS_OK, secret_exchange(fields=["data.id", "data.key", "data.url"], data=GOOD_DATA)])
    # A key with a dot cannot be masked alone: the policy asks for the whole data.
    request("dittoserver-dotted-key.json", variant({"credentialsSecretRef": dict(ref, endpointKey="s3.endpoint")}))
    write_session("session-secret-dotted-key.yml", [*ACCESS_OK, secret_exchange(fields=["data"], data={
        "accessKeyId": GOOD_DATA["accessKeyId"], "secretAccessKey": GOOD_DATA["secretAccessKey"],
        "s3.endpoint": b64("https://s3.cubbit.eu")})])
    write_session("session-secret-custom-keys.yml", [*ACCESS_OK, secret_exchange(fields=["data.id", "data.key", "data.url"], data={
        "id": b64(FAKE_ACCESS_KEY_ID), "key": b64(FAKE_SECRET_ACCESS_KEY), "url": b64("https://s3.acme.cubbit.eu")})])
    # An UPDATE that keeps the Secret and keys is not asked about its author's access.
    write_session("session-update-secret-found.yml", [secret_exchange(data=GOOD_DATA)])
    write_session("session-access-allowed.yml", ACCESS_OK)
    # A DittoServer without S3 credentials still names the identity Secrets: its author is asked about those.
    write_session("session-access-identity-only.yml", access_exchanges(names=SAMPLE_SECRETS[1:]))
    # The author's access to the Secret (kubernetes/can_i): refused, failing, and a service account.
    write_session("session-access-refused.yml", access_exchanges(refused=[SECRET_NAME]))
    write_session("session-access-failing.yml", access_exchanges(error=(
        "ApiError: subjectaccessreviews.authorization.k8s.io is forbidden: User \"system:serviceaccount:kubewarden:policy-server-dittofs-s3\" "
        "cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope: Forbidden")))
    write_session("session-access-serviceaccount.yml", [*access_exchanges(user=SERVICE_ACCOUNT), secret_exchange(data=GOOD_DATA)])
    write_session("session-access-renamed-keys.yml", [*ACCESS_OK, secret_exchange(
        fields=["data.accessKeyId", "data.endpoint", "data.password"], data=dict(GOOD_DATA, password=GOOD_DATA["secretAccessKey"]))])
    write_json("dittoserver-create-by-serviceaccount.json", admission_request(
        "dittoserver-create-by-serviceaccount", DITTOSERVER_GVK, DITTOSERVER_GVR, copy.deepcopy(sample), user=SERVICE_ACCOUNT))
    audit = admission_request("dittoserver-audit-scan", DITTOSERVER_GVK, DITTOSERVER_GVR, copy.deepcopy(sample))
    audit["userInfo"] = {}  # the audit scanner's requests carry no user
    write_json("dittoserver-audit-scan.json", audit)
    rekeyed = copy.deepcopy(sample)
    rekeyed["spec"]["s3"]["credentialsSecretRef"]["secretAccessKeyKey"] = "password"
    write_json("dittoserver-update-key-renamed.json", admission_request(
        "dittoserver-update-key-renamed", DITTOSERVER_GVK, DITTOSERVER_GVR, rekeyed, "UPDATE", copy.deepcopy(sample)))
    relabelled = copy.deepcopy(sample)
    relabelled["metadata"]["labels"] = {"team": "storage"}
    write_json("dittoserver-update-same-secret.json", admission_request(
        "dittoserver-update-same-secret", DITTOSERVER_GVK, DITTOSERVER_GVR, relabelled, "UPDATE", copy.deepcopy(sample)))
    credential_route_fixtures(sample)


# A developer of the namespace who may edit DittoServers but may not read their Secrets.
DEVELOPER = {"username": "dev@example.com", "groups": ["system:authenticated", "team-storage"]}
OPERATOR = {"username": "system:serviceaccount:dittofs-system:dittofs-operator",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:dittofs-system", "system:authenticated"]}
POSTGRES_SECRET = "dittofs-postgres"


def credential_route_fixtures(sample):
    """Writes that decide what runs with the named Secrets, by someone who may not read them."""
    def update(name, change, user=DEVELOPER):
        changed = copy.deepcopy(sample)
        change(changed)
        write_json(name, admission_request(name.removesuffix(".json"), DITTOSERVER_GVK, DITTOSERVER_GVR,
                                           changed, "UPDATE", copy.deepcopy(sample), user=user))

    update("dittoserver-update-image.json", lambda o: o["spec"].update(image="registry.example/dittofs:patched"))
    update("dittoserver-update-database.json", lambda o: o["spec"].update(
        database={"type": "postgres", "postgresSecretRef": {"name": POSTGRES_SECRET, "key": "url"}}))
    update("dittoserver-update-identity.json", lambda o: o["spec"]["identity"]["admin"].update(username="root"))
    update("dittoserver-update-bucket.json", lambda o: o["spec"]["s3"].update(bucket="dittofs-archive"))
    update("dittoserver-update-scaled.json", lambda o: (
        o["spec"].update(replicas=0, resources={"limits": {"memory": "4Gi"}}),
        o["metadata"].update(labels={"team": "storage"}, finalizers=["dittofs.dittofs.com/finalizer"])))
    update("dittoserver-update-status-by-operator.json", lambda o: o.update(status={"phase": "Running"}), user=OPERATOR)
    write_session("session-developer-refused.yml", access_exchanges(user=DEVELOPER, refused=[SECRET_NAME]))
    write_session("session-developer-allowed.yml", access_exchanges(user=DEVELOPER))
    with_postgres = [SECRET_NAME, POSTGRES_SECRET, "dittofs-admin-secret", "dittofs-jwt-secret"]
    write_session("session-developer-postgres-refused.yml", access_exchanges(
        user=DEVELOPER, refused=[POSTGRES_SECRET], names=with_postgres))

    backup = copy.deepcopy(sample)
    backup["spec"]["percona"] = {"enabled": True, "backup": {
        "enabled": True, "bucket": "pg-backups", "endpoint": "https://backups.example.net",
        "credentialsSecretRef": {"name": "dittofs-backup-keys"}}}
    write_json("dittoserver-create-percona-backup.json", admission_request(
        "dittoserver-create-percona-backup", DITTOSERVER_GVK, DITTOSERVER_GVR, backup, user=DEVELOPER))
    write_session("session-developer-backup-refused.yml", access_exchanges(
        user=DEVELOPER, refused=["dittofs-backup-keys"], names=[*SAMPLE_SECRETS, "dittofs-backup-keys"]))

    groups_only = {"username": "", "groups": ["system:masters"]}
    write_json("dittoserver-create-groups-only.json", admission_request(
        "dittoserver-create-groups-only", DITTOSERVER_GVK, DITTOSERVER_GVR, copy.deepcopy(sample), user=groups_only))
    write_session("session-groups-only-refused.yml", access_exchanges(user=groups_only, refused=[SECRET_NAME]))

    traversal = copy.deepcopy(sample)
    traversal["spec"]["database"] = {"type": "postgres", "postgresSecretRef": {
        "name": "../../../namespaces/kube-system/secrets/admin", "key": "url"}}
    write_json("dittoserver-secret-ref-traversal.json", admission_request(
        "dittoserver-secret-ref-traversal", DITTOSERVER_GVK, DITTOSERVER_GVR, traversal))


HASH_ANNOTATION = "dittofs.io/s3-credentials-hash"
RECORD_ANNOTATION = "dittofs.io/s3-credentials-source"
STATEFULSET_GVK = {"group": "apps", "version": "v1", "kind": "StatefulSet"}
STATEFULSET_GVR = {"group": "apps", "version": "v1", "resource": "statefulsets"}
POD_GVK = {"group": "", "version": "v1", "kind": "Pod"}
POD_GVR = {"group": "", "version": "v1", "resource": "pods"}
ROTATED_SECRET_ACCESS_KEY = "FAKE-ROTATED-SECRET-KEY-DO-NOT-USE"


def credentials_hash(entries):
    """The documented framing: sorted 's3:<key>' entries, '<len>:<key>:<len>:<value>' each."""
    framed = b""
    for key, value in sorted((f"s3:{k}", v.encode()) for k, v in entries.items()):
        framed += f"{len(key.encode())}:{key}:{len(value)}:".encode() + value
    return hashlib.sha256(framed).hexdigest()


ORIGINAL_HASH = credentials_hash({"accessKeyId": FAKE_ACCESS_KEY_ID, "secretAccessKey": FAKE_SECRET_ACCESS_KEY,
                                  "endpoint": "https://s3.cubbit.eu"})
ROTATED_HASH = credentials_hash({"accessKeyId": FAKE_ACCESS_KEY_ID, "secretAccessKey": ROTATED_SECRET_ACCESS_KEY,
                                 "endpoint": "https://s3.cubbit.eu"})


def injection_record(secret_name=SECRET_NAME, region="eu-west-1"):
    """The documented record of what the policy injected: compact JSON, fields in this order."""
    return json.dumps({"secretName": secret_name, "accessKeyIdKey": "accessKeyId",
                       "secretAccessKeyKey": "secretAccessKey", "endpointKey": "endpoint",
                       "region": region}, separators=(",", ":"))


def injected_env(secret_name=SECRET_NAME, region="eu-west-1"):
    ref = lambda key, **extra: {"secretKeyRef": dict({"name": secret_name, "key": key}, **extra)}
    return [
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": ref("accessKeyId")},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": ref("secretAccessKey")},
        {"name": "AWS_ENDPOINT_URL", "valueFrom": ref("endpoint", optional=True)},
        {"name": "AWS_REGION", "value": region},
    ]


def operator_container(ditto):
    """The server container as the operator builds it (before any injection)."""
    return {
        "name": "dittofs",
        "image": ditto["spec"]["image"],
        "command": ["/app/dittofs"],
        "args": ["start", "--config", "/config/config.yaml"],
        "ports": [{"name": "nfs", "containerPort": 2049, "protocol": "TCP"}],
        "env": [{"name": "DITTOFS_LOGGING_LEVEL", "value": "INFO"}],
        "volumeMounts": [
            {"name": "config", "mountPath": "/config", "readOnly": True},
            {"name": "metadata", "mountPath": "/data/metadata"},
            {"name": "cache", "mountPath": "/data/cache"},
        ],
        "resources": {},
        "imagePullPolicy": "Always",
    }


def operator_statefulset(ditto):
    name = ditto["metadata"]["name"]
    labels = {"app": "dittofs-server", "instance": name}
    claim = lambda claim_name, size: {
        "metadata": {"name": claim_name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name, "namespace": NAMESPACE, "generation": 1,
            "ownerReferences": [{"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServer", "name": name,
                                 "uid": ditto["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "replicas": ditto["spec"]["replicas"],
            "serviceName": name,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {"dittofs.io/config-hash": "5" * 64}},
                "spec": {
                    "containers": [operator_container(ditto)],
                    "volumes": [{"name": "config", "configMap": {"name": f"{name}-config"}}],
                    # A field from a future Kubernetes version: it must survive mutation.
                    "fieldFromKubernetesV1_40": {"enabled": True},
                },
            },
            "volumeClaimTemplates": [claim("metadata", ditto["spec"]["storage"]["metadataSize"]),
                                     claim("cache", ditto["spec"]["storage"]["cacheSize"])],
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
        },
    }


def inject_into(template_or_pod_spec_parent, metadata, hash_value):
    container = template_or_pod_spec_parent["spec"]["containers"][0]
    container["env"] = container["env"] + injected_env()
    metadata.setdefault("annotations", {})[HASH_ANNOTATION] = hash_value
    metadata["annotations"][RECORD_ANNOTATION] = injection_record()


def injected_statefulset(ditto, hash_value):
    sts = operator_statefulset(ditto)
    inject_into(sts["spec"]["template"], sts["spec"]["template"]["metadata"], hash_value)
    return sts


def pod_from(statefulset):
    """A pod as the StatefulSet controller creates it from the template."""
    name = statefulset["metadata"]["name"]
    template = copy.deepcopy(statefulset["spec"]["template"])
    metadata = template["metadata"]
    metadata["name"] = f"{name}-0"
    metadata["generateName"] = f"{name}-"
    metadata["namespace"] = NAMESPACE
    metadata["labels"] = dict(metadata["labels"], **{"apps.kubernetes.io/pod-index": "0",
                                                     "statefulset.kubernetes.io/pod-name": f"{name}-0"})
    metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name,
                                    "uid": "0b5d6f7e-0000-4000-8000-000000000002",
                                    "controller": True, "blockOwnerDeletion": True}]
    spec = dict(template["spec"], hostname=f"{name}-0", subdomain=name)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def add(path, value):
    return {"op": "add", "path": path, "value": value}


def env_patch(container_path, existing):
    return [add(f"{container_path}/env/{existing + i}", entry) for i, entry in enumerate(injected_env())]


def annotation_path(metadata_path, key):
    return f"{metadata_path}/annotations/{key.replace('~', '~0').replace('/', '~1')}"


def hash_path(metadata_path):
    return annotation_path(metadata_path, HASH_ANNOTATION)


def marks(metadata_path, hash_value=None):
    """The annotations a first injection adds, in the differ's (sorted key) order."""
    ops = [add(hash_path(metadata_path), hash_value)] if hash_value else []
    return ops + [add(annotation_path(metadata_path, RECORD_ANNOTATION), injection_record())]


def workload_fixtures(sample):
    ditto = copy.deepcopy(sample)
    ditto["metadata"]["uid"] = "7d1e3c2a-0000-4000-8000-000000000001"
    ditto_payload = json.dumps(ditto, separators=(",", ":"))
    name = ditto["metadata"]["name"]

    def sts_request(file, obj, operation="CREATE", old=None):
        write_json(file, admission_request(file.removesuffix(".json"), STATEFULSET_GVK, STATEFULSET_GVR, obj, operation, old))

    def pod_request(file, obj, operation="CREATE", old=None):
        write_json(file, admission_request(file.removesuffix(".json"), POD_GVK, POD_GVR, obj, operation, old))

    plain_sts = operator_statefulset(ditto)
    sts_request("statefulset-create.json", plain_sts)
    scaled_old = injected_statefulset(ditto, ORIGINAL_HASH)
    scaled_new = copy.deepcopy(scaled_old)
    scaled_new["spec"]["replicas"] = 2
    sts_request("statefulset-update-injected.json", scaled_new, "UPDATE", scaled_old)
    # The operator's reconcile rewrites the template: our env and hash are gone from the new object.
    sts_request("statefulset-update-reconciled.json", operator_statefulset(ditto), "UPDATE", injected_statefulset(ditto, ORIGINAL_HASH))
    unowned = operator_statefulset(ditto)
    unowned["metadata"]["ownerReferences"][0]["kind"] = "Application"
    unowned["metadata"]["ownerReferences"][0]["apiVersion"] = "example.com/v1"
    sts_request("statefulset-not-dittofs.json", unowned)

    pod_request("pod-create.json", pod_from(plain_sts))
    pod_request("pod-create-injected.json", pod_from(injected_statefulset(ditto, ORIGINAL_HASH)))
    conflict = pod_from(plain_sts)
    conflict["spec"]["containers"][0]["env"].append({"name": "AWS_REGION", "value": "us-east-1"})
    pod_request("pod-create-conflict.json", conflict)
    renamed = pod_from(plain_sts)
    renamed["spec"]["containers"][0]["name"] = "server"
    pod_request("pod-create-no-dittofs-container.json", renamed)
    nginx = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "web", "namespace": NAMESPACE, "labels": {"app": "web"}},
             "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}
    pod_request("pod-create-not-dittofs.json", nginx)
    pod_request("pod-update.json", pod_from(plain_sts), "UPDATE", pod_from(plain_sts))
    # A kubelet's status update of a stale pod (pods/status): not the policy's business.
    status_update = admission_request("pod-update-status", POD_GVK, POD_GVR, pod_from(plain_sts), "UPDATE", pod_from(plain_sts),
                                      user={"username": "system:node:node-1", "groups": ["system:nodes", "system:authenticated"]})
    status_update["subResource"] = status_update["requestSubResource"] = "status"
    write_json("pod-update-status.json", status_update)

    # Pod-level routes around the endpoint rules, in the dittofs container (onCredentialRoute).
    def routed(file, change, base=plain_sts):
        pod = pod_from(base)
        change(pod["spec"]["containers"][0])
        pod_request(file, pod)

    routed("pod-create-endpoint-override.json",
           lambda c: c["env"].append({"name": "AWS_ENDPOINT_URL_S3", "value": "https://s3.attacker.example"}))
    routed("pod-create-envfrom.json", lambda c: c.update(envFrom=[{"configMapRef": {"name": "dittofs-extra-env"}}]))
    routed("pod-create-injected-envfrom.json", lambda c: c.update(envFrom=[{"configMapRef": {"name": "dittofs-extra-env"}}]),
           base=injected_statefulset(ditto, ORIGINAL_HASH))
    # Every other kind of route, each in a pod that already carries the injection (so verify
    # mode has nothing else to say about it): test_data/route-cases.tsv lists what each must name.
    injected = injected_statefulset(ditto, ORIGINAL_HASH)
    route_cases = [
        ("pod-route-endpoint-s3.json", lambda c: c["env"].append({"name": "AWS_ENDPOINT_URL_S3", "value": "https://s3.override.example"}),
         "AWS_ENDPOINT_URL_S3 overrides AWS_ENDPOINT_URL"),
        ("pod-route-ignore-endpoints.json", lambda c: c["env"].append({"name": "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "value": "true"}),
         "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS drops the configured endpoint"),
        ("pod-route-config-file.json", lambda c: c["env"].append({"name": "AWS_CONFIG_FILE", "value": "/config/aws"}),
         "AWS_CONFIG_FILE can set endpoint_url"),
        ("pod-route-home.json", lambda c: c["env"].append({"name": "HOME", "value": "/data/cache"}), "HOME moves ~/.aws/config"),
        ("pod-route-ssl-cert-file.json", lambda c: c["env"].append({"name": "SSL_CERT_FILE", "value": "/config/ca.pem"}),
         "SSL_CERT_FILE replaces the trusted roots"),
        ("pod-route-ca-bundle.json", lambda c: c["env"].append({"name": "AWS_CA_BUNDLE", "value": "/config/ca.pem"}),
         "AWS_CA_BUNDLE sets the client's trusted roots"),
        ("pod-route-dns-searches.json", None, "dnsConfig.searches chooses who resolves"),
        ("pod-route-copied-key.json", lambda c: c["env"].append({"name": "DEBUG_KEY", "value": "key=$(AWS_SECRET_ACCESS_KEY)"}),
         "DEBUG_KEY copies AWS_SECRET_ACCESS_KEY"),
        ("pod-route-command.json", lambda c: c.update(command=["/app/dittofs", "--key", "$(AWS_ACCESS_KEY_ID)"]),
         "command[2] copies AWS_ACCESS_KEY_ID"),
        ("pod-route-subpathexpr.json", lambda c: c["volumeMounts"].append(
            {"name": "cache", "mountPath": "/data/keys", "subPathExpr": "$(AWS_SECRET_ACCESS_KEY)"}),
         "subPathExpr copies AWS_SECRET_ACCESS_KEY"),
        ("pod-route-plain-endpoint.json", lambda c: c["env"].__setitem__(
            next(i for i, e in enumerate(c["env"]) if e["name"] == "AWS_ENDPOINT_URL"),
            {"name": "AWS_ENDPOINT_URL", "value": "https://s3.override.example"}),
         "AWS_ENDPOINT_URL is not read from a Secret"),
        ("pod-route-trust-store.json", lambda c: c["volumeMounts"].append({"name": "config", "mountPath": "/etc/ssl/certs"}),
         "/etc/ssl/certs replaces the trusted roots"),
    ]
    for file, change, _ in route_cases:
        if change:
            routed(file, change, base=injected)
    searching = pod_from(injected)
    searching["spec"]["dnsConfig"] = {"searches": ["attacker.example"], "options": [{"name": "ndots", "value": "5"}]}
    pod_request("pod-route-dns-searches.json", searching)
    aliased = pod_from(injected)
    aliased["spec"]["hostAliases"] = [{"ip": "192.0.2.10", "hostnames": ["s3.cubbit.eu"]}]
    pod_request("pod-route-host-aliases.json", aliased)
    route_cases.append(("pod-route-host-aliases.json", None, "hostAliases can point the endpoint's host name"))
    (HERE / "route-cases.tsv").write_text("".join(f"{file}\t{text}\n" for file, _, text in route_cases))
    routed("pod-create-args-reference.json",
           lambda c: c.update(args=[*c.get("args", []), "--debug-key=$(AWS_SECRET_ACCESS_KEY)"]))
    routed("pod-create-escaped-reference.json",
           lambda c: c.update(args=[*c.get("args", []), "--help-text=$$(AWS_SECRET_ACCESS_KEY)"]))
    # The policy's own entries, then a second AWS_ENDPOINT_URL: kubelet uses the last.
    routed("pod-create-duplicate-endpoint.json",
           lambda c: c["env"].append({"name": "AWS_ENDPOINT_URL", "value": "https://s3.attacker.example"}),
           base=injected_statefulset(ditto, ORIGINAL_HASH))
    # Operator v0.12.0's own rendering (its command, args, preStop hook and AWS env): no route.
    routed("pod-create-operator-rendered.json", lambda c: (
        c["env"].extend(injected_env()),
        c.update(command=["/app/dfs"], args=["start", "--foreground", "--config", "/config/config.yaml"],
                 lifecycle={"preStop": {"exec": {"command": ["sleep", "5"]}}})))
    envfrom_sts = operator_statefulset(ditto)
    envfrom_sts["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "dittofs-extra-env"}}]
    sts_request("statefulset-create-envfrom.json", envfrom_sts)

    # Expected patches, derived from the fixtures above (kwctl diffs object against mutated_object).
    sts_container = "/spec/template/spec/containers/0"
    # The differ walks object keys in order: template.metadata comes before template.spec.
    write_json("expected-patch-statefulset-create.json",
               marks("/spec/template/metadata", ORIGINAL_HASH) + env_patch(sts_container, 1))
    write_json("expected-patch-statefulset-rotated.json",
               [{"op": "replace", "path": hash_path("/spec/template/metadata"), "value": ROTATED_HASH}])
    write_json("expected-patch-statefulset-carry-over.json",
               marks("/spec/template/metadata", ORIGINAL_HASH) + env_patch(sts_container, 1))
    write_json("expected-patch-pod-create.json",
               marks("/metadata", ORIGINAL_HASH) + env_patch("/spec/containers/0", 1))
    write_json("expected-patch-pod-env-only.json", marks("/metadata") + env_patch("/spec/containers/0", 1))
    write_json("expected-patch-pod-overwrite.json",
               marks("/metadata", ORIGINAL_HASH)
               + [{"op": "replace", "path": "/spec/containers/0/env/1/value", "value": "eu-west-1"}]
               + [add(f"/spec/containers/0/env/{2 + i}", e) for i, e in enumerate(injected_env()[:3])])

    ditto_exchange = exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, payload=ditto_payload)
    no_s3 = copy.deepcopy(ditto)
    no_s3["spec"].pop("s3")
    rotated = dict(GOOD_DATA, secretAccessKey=b64(ROTATED_SECRET_ACCESS_KEY))
    write_session("session-workload-found.yml", [ditto_exchange, secret_exchange(data=GOOD_DATA)])
    # A host older than 1.33 ignores the masks: whole objects, unrelated keys and a
    # last-applied-configuration annotation included. The policy must decide the same.
    noisy_secret = json.loads(secret_payload(dict(GOOD_DATA, notes=b64("unrelated"))))
    noisy_secret["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET_NAME}, "data": {"notes": b64("unrelated")}})}
    write_session("session-workload-found-unmasking-host.yml", [
        exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, payload=ditto_payload, masked_host=False),
        exchange("v1", "Secret", SECRET_NAME, payload=json.dumps(noisy_secret, separators=(",", ":")), masked_host=False)])
    write_session("session-workload-rotated.yml", [ditto_exchange, secret_exchange(data=rotated)])
    write_session("session-workload-unrelated-key.yml", [ditto_exchange, secret_exchange(data=dict(GOOD_DATA, notes=b64("rotated by ops")))])
    write_session("session-workload-no-s3.yml", [exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, payload=json.dumps(no_s3, separators=(",", ":")))])
    write_session("session-workload-ditto-missing.yml", [exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, error=not_found("dittofs.dittofs.com/v1alpha1", "DittoServer", name))])
    write_session("session-workload-ditto-denied.yml", [exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, error=(
        f"dittoservers.dittofs.dittofs.com \"{name}\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server-default\" "
        f"cannot get resource \"dittoservers\" in API group \"dittofs.dittofs.com\" in the namespace \"{NAMESPACE}\""))])
    write_session("session-workload-secret-missing.yml", [ditto_exchange, secret_exchange(error=not_found("v1", "Secret", SECRET_NAME))])
    write_session("session-workload-secret-incomplete.yml", [ditto_exchange, secret_exchange(data={"accessKeyId": GOOD_DATA["accessKeyId"]})])
    write_session("session-workload-secret-denied.yml", [ditto_exchange, secret_exchange(error=(
        f"secrets \"{SECRET_NAME}\" is forbidden: User \"system:serviceaccount:kubewarden:policy-server-default\" "
        f"cannot get resource \"secrets\" in API group \"\" in the namespace \"{NAMESPACE}\""))])


def hostile_fixtures(sample):
    """Malformed and adversarial inputs; each must end in a clear verdict, never a 500.
    hostile/cases.tsv lists: request, session, expected ('reject:<text>', 'accept', 'warn:<text>',
    'refuse:<text>' for requests the tool itself refuses)."""
    out = HERE / "hostile"
    out.mkdir(exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    ditto = copy.deepcopy(sample)
    ditto["metadata"]["uid"] = "7d1e3c2a-0000-4000-8000-000000000001"
    name = ditto["metadata"]["name"]
    sts = operator_statefulset(ditto)
    pod = pod_from(sts)
    cases = []

    def case(label, gvk, gvr, obj, expected, exchanges=(), operation="CREATE", old=None, raw=None):
        file = f"{len(cases) + 1:02d}-{label}.json"
        request = raw if raw is not None else admission_request(label, gvk, gvr, obj, operation, old)
        (out / file).write_text(json.dumps(request, indent=1) + "\n")
        session = "session-empty.yml"
        if exchanges:
            session = f"hostile/session-{len(cases) + 1:02d}.yml"
            write_session(session, list(exchanges))
        cases.append((f"hostile/{file}", session, expected))

    def ditto_case(label, mutate, expected, exchanges=()):
        obj = copy.deepcopy(ditto)
        obj = mutate(obj)
        # A DittoServer that reaches the Secret check first asks about its author's access.
        case(label, DITTOSERVER_GVK, DITTOSERVER_GVR, obj, expected, [*ACCESS_OK, *exchanges] if exchanges else ())

    def pod_case(label, mutate, expected, exchanges=()):
        case(label, POD_GVK, POD_GVR, mutate(copy.deepcopy(pod)), expected, exchanges)

    def sts_case(label, mutate, expected, exchanges=(), operation="CREATE", old=None):
        case(label, STATEFULSET_GVK, STATEFULSET_GVR, mutate(copy.deepcopy(sts)), expected, exchanges, operation, old)

    def put(path, value):
        def mutate(obj):
            target = obj
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            return obj
        return mutate

    ditto_ok = exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, payload=json.dumps(ditto, separators=(",", ":")))
    secret_ok = secret_exchange(data=GOOD_DATA)
    s3 = ["spec", "s3"]
    ref = s3 + ["credentialsSecretRef"]

    # DittoServer objects of the wrong shape
    ditto_case("dittoserver-object-null", lambda o: None, "reject:object: must be an object, not null")
    ditto_case("dittoserver-object-array", lambda o: [o], "reject:object: must be an object, not an array")
    ditto_case("dittoserver-object-string", lambda o: "DittoServer", "reject:object: must be an object, not a string")
    ditto_case("dittoserver-spec-number", put(["spec"], 7), "reject:spec: must be an object, not a number")
    ditto_case("dittoserver-s3-true", put(s3, True), "reject:spec.s3: must be an object, not a boolean")
    ditto_case("dittoserver-ref-number", put(ref, 1), "reject:spec.s3.credentialsSecretRef: must be an object, not a number")
    ditto_case("dittoserver-secretname-null", put(ref + ["secretName"], None), "reject:secretName: must be a string, not null")
    ditto_case("dittoserver-secretname-array", put(ref + ["secretName"], ["a"]), "reject:secretName: must be a string, not an array")
    ditto_case("dittoserver-secretname-unicode", put(ref + ["secretName"], "sécret-ß"), "reject:must be a DNS-1123 subdomain")
    ditto_case("dittoserver-secretname-control-chars", put(ref + ["secretName"], "a\u0000b\nc"), "reject:must be a DNS-1123 subdomain")
    ditto_case("dittoserver-key-number", put(ref + ["accessKeyIdKey"], 12), "reject:accessKeyIdKey: must be a string, not a number")
    ditto_case("dittoserver-key-slash", put(ref + ["endpointKey"], "../etc/passwd"), "reject:endpointKey: must be a valid Secret key")
    ditto_case("dittoserver-region-object", put(s3 + ["region"], {"name": "eu"}), "reject:spec.s3.region: must be a string, not an object")
    ditto_case("dittoserver-region-unicode", put(s3 + ["region"], "eu-wést-1"), "reject:spec.s3.region: must be 1-63")
    ditto_case("dittoserver-bucket-number", put(s3 + ["bucket"], 3.5), "reject:spec.s3.bucket: must be a string, not a number")
    ditto_case("dittoserver-bucket-ipv4-like", put(s3 + ["bucket"], "10.0.0.255"), "reject:must not be formatted as an IP address")
    ditto_case("dittoserver-metadata-null", put(["metadata"], None), "warn:was not found", [secret_exchange(error=not_found("v1", "Secret", SECRET_NAME))])
    # Lookups answering garbage
    ditto_case("dittoserver-secret-answer-array", lambda o: o, "warn:the lookup answer is not an object", [secret_exchange(raw="[1,2,3]")])
    ditto_case("dittoserver-secret-answer-null", lambda o: o, "warn:the lookup answer is not an object", [secret_exchange(raw="null")])
    ditto_case("dittoserver-secret-answer-truncated", lambda o: o, "warn:the host answered with invalid JSON", [secret_exchange(raw='{"data":{"accessKeyId":"RkFL')])
    ditto_case("dittoserver-secret-data-array", lambda o: o, "warn:its data is not a map", [secret_exchange(data=["accessKeyId"])])
    ditto_case("dittoserver-secret-values-numbers", lambda o: o, "warn:is not a base64 string", [secret_exchange(data={"accessKeyId": 1, "secretAccessKey": True})])
    ditto_case("dittoserver-secret-is-a-dittoserver", lambda o: o, "warn:the host answered with another object than the one asked for", [exchange("v1", "Secret", SECRET_NAME, payload=json.dumps(ditto))])
    ditto_case("dittoserver-endpoint-binary", lambda o: o, "warn:entry \"endpoint\" is not UTF-8 text", [secret_exchange(data=dict(GOOD_DATA, endpoint=base64.b64encode(b"\xff\xfe\x00").decode()))])
    ditto_case("dittoserver-endpoint-javascript", lambda o: o, "warn:entry \"endpoint\" must be an absolute URL", [secret_exchange(data=dict(GOOD_DATA, endpoint=b64("javascript:alert(1)")))])

    # Workloads of the wrong shape
    pod_case("pod-containers-null", put(["spec", "containers"], None), "reject:spec.containers is malformed", [ditto_ok, secret_ok])
    pod_case("pod-containers-string", put(["spec", "containers"], "dittofs"), "reject:spec.containers is malformed", [ditto_ok, secret_ok])
    pod_case("pod-spec-missing", lambda o: {k: v for k, v in o.items() if k != "spec"}, "reject:spec is malformed", [ditto_ok, secret_ok])
    pod_case("pod-env-string", put(["spec", "containers", 0, "env"], "AWS_REGION=x"), "reject:spec.containers[0].env is malformed", [ditto_ok, secret_ok])
    pod_case("pod-env-entries-not-objects", put(["spec", "containers", 0, "env"], [1, "two", None]), "accept", [ditto_ok, secret_ok])
    pod_case("pod-env-duplicate-names", put(["spec", "containers", 0, "env"], [{"name": "AWS_REGION", "value": "eu-west-1"}, {"name": "AWS_REGION", "value": "us-east-1"}]), "reject:already defines AWS_REGION differently", [ditto_ok, secret_ok])
    pod_case("pod-annotations-array", put(["metadata", "annotations"], ["x"]), "reject:metadata.annotations is malformed", [ditto_ok, secret_ok])
    pod_case("pod-labels-null", put(["metadata", "labels"], None), "accept")
    pod_case("pod-labels-array", put(["metadata", "labels"], ["app"]), "accept")
    pod_case("pod-instance-label-number", put(["metadata", "labels", "instance"], 5), "accept")
    pod_case("pod-two-dittofs-containers", lambda o: put(["spec", "containers"], o["spec"]["containers"] * 2)(o), "accept", [ditto_ok, secret_ok])
    pod_case("pod-unicode-container-names", put(["spec", "containers"], [{"name": "sérveur"}, {"name": "日本"}]), "warn:it has no container \"dittofs\"", [ditto_ok, secret_ok])
    pod_case("pod-hundreds-of-containers", put(["spec", "containers"], [{"name": f"c{i}", "image": "x"} for i in range(300)] + [operator_container(ditto)]), "accept", [ditto_ok, secret_ok])
    pod_case("pod-thousand-env-entries", put(["spec", "containers", 0, "env"], [{"name": f"V{i}", "value": str(i)} for i in range(1000)]), "accept", [ditto_ok, secret_ok])
    pod_case("pod-dittoserver-answer-garbage", lambda o: o, "warn:the host answered with invalid JSON", [exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, payload="<html>502</html>")])
    # Same name and namespace, another kind: an answer about another object.
    pod_case("pod-dittoserver-answer-is-a-secret", lambda o: o, "warn:the host answered with another object than the one asked for", [exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, payload=secret_payload(GOOD_DATA, name=name))])
    pod_case("pod-dittoserver-s3-wrong-type", lambda o: o, "warn:has an invalid spec.s3", [exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, payload=json.dumps(dict(ditto, spec=dict(ditto["spec"], s3="yes"))))])
    sts_case("statefulset-owners-string", put(["metadata", "ownerReferences"], "DittoServer"), "accept")
    sts_case("statefulset-owners-not-objects", put(["metadata", "ownerReferences"], [1, None, "x"]), "accept")
    sts_case("statefulset-template-null", put(["spec", "template"], None), "reject:spec.template is malformed", [ditto_ok, secret_ok])
    # The stored revision is garbage: nothing of the policy's to keep, and the warning says so.
    sts_case("statefulset-update-old-object-garbage", lambda o: o, "warn:left as they came", [exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, error=not_found("dittofs.dittofs.com/v1alpha1", "DittoServer", name))], "UPDATE", "not an object")

    # Requests of the wrong shape
    bad = admission_request("odd", DITTOSERVER_GVK, DITTOSERVER_GVR, ditto)
    case("request-operation-unknown", None, None, None, "accept", raw=dict(bad, operation="PATCH"))
    # kwctl refuses these before any evaluation (it cannot build an AdmissionRequest from them).
    case("request-kind-missing", None, None, None, "refuse:missing field `kind`", raw={k: v for k, v in bad.items() if k != "kind"})
    case("request-uid-number", None, None, None, "refuse:invalid type: integer `42`, expected a string", raw=dict(bad, uid=42))
    # 124 levels: the host still parses the request (serde_json's limit is 128), but the policy's
    # payload wraps it once more and crosses the limit.
    case("request-object-deeply-nested", None, None, None, "reject:malformed validation request: recursion limit exceeded",
         raw=dict(bad, object=dict(ditto, spec=dict(ditto["spec"], extra=json.loads("[" * 124 + "]" * 124)))))
    # An answer about another object (a cache or proxy mixing answers up) decides nothing.
    other = dict(copy.deepcopy(ditto), metadata=dict(ditto["metadata"], name="another-dittoserver"))
    pod_case("pod-dittoserver-answer-names-another-object", lambda o: o, "warn:the host answered with another object than the one asked for",
             [exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, payload=json.dumps(other))])
    # A Secret reference that is not a name, taken from an object, never reaches the host.
    sts_case("statefulset-owner-name-traversal", lambda o: (o["metadata"]["ownerReferences"][0].update(
        name="../../../namespaces/kube-system/dittoservers/x"), o)[1], "reject:lookup failed (not looked up: its name is not a valid name)")

    (out / "cases.tsv").write_text("".join(f"{r}\t{s}\t{e}\n" for r, s, e in cases))


# --- Secret guard ------------------------------------------------------------------------------

SECRET_GVK = {"group": "", "version": "v1", "kind": "Secret"}
SECRET_GVR = {"group": "", "version": "v1", "resource": "secrets"}
# What the guard asks of each DittoServer it lists (secret_guard::LISTED_FIELDS).
LISTED_FIELDS = ["metadata.name", "spec.s3.credentialsSecretRef"]


def list_exchange(items=(), *, error=None):
    """kubernetes/list_resources_by_namespace for the DittoServers of NAMESPACE, as kwctl 1.35
    records it; the payload is the list the host builds from its watch, items pruned to the masks."""
    masks = "".join(f"- {field}\n" for field in sorted(LISTED_FIELDS))
    request = (f"!KubernetesListResourceNamespace\napi_version: dittofs.dittofs.com/v1alpha1\nkind: DittoServer\n"
               f"namespace: {NAMESPACE}\nlabel_selector: null\nfield_selector: null\nfield_masks:\n{masks}")
    if error is not None:
        return {"type": "Exchange", "request": request, "response": {"type": "Error", "message": error}}
    def listed(item):
        # policy-evaluator 1.35 keeps metadata whole but for managedFields (emptied) and the
        # last-applied annotation (dropped); keys come out sorted.
        item = json.loads(prune(json.dumps(item), LISTED_FIELDS))
        metadata = item.setdefault("metadata", {})
        metadata["managedFields"] = []
        metadata.setdefault("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
        return item
    payload = {"apiVersion": "dittofs.dittofs.com/v1alpha1", "kind": "DittoServerList",
               "metadata": {}, "items": [listed(item) for item in items]}
    return {"type": "Exchange", "request": request,
            "response": {"type": "Success", "payload": json.dumps(payload, separators=(",", ":"), sort_keys=True)}}


def secret_object(data, name=SECRET_NAME, kind="Opaque"):
    return dict(json.loads(secret_payload(data, name)), type=kind)


def secret_guard_fixtures(sample):
    """Secret writes: rotations good and bad, deletions, Secrets no DittoServer names."""
    sample.setdefault("metadata", {})["uid"] = "7d1e3c2a-0000-4000-8000-000000000001"
    sample["metadata"]["namespace"] = NAMESPACE
    other = copy.deepcopy(sample)
    other["metadata"]["name"] = "dittofs-archive"
    other["spec"]["s3"]["credentialsSecretRef"] = {"secretName": "archive-s3-credentials"}
    leaving = copy.deepcopy(sample)
    leaving["metadata"].update(name="dittofs-retired", deletionTimestamp="2026-12-01T00:00:00Z")

    def request(name, obj, operation="CREATE", old=None, user=ADMIN):
        write_json(name, admission_request(name.removesuffix(".json"), SECRET_GVK, SECRET_GVR, obj, operation, old, user))

    good = secret_object(GOOD_DATA)
    request("secret-update-rotated.json", secret_object(dict(GOOD_DATA, secretAccessKey=b64("FAKE-ROTATED-SECRET-KEY-DO-NOT-USE"))), "UPDATE", good)
    request("secret-update-emptied.json", secret_object(dict(GOOD_DATA, accessKeyId="")), "UPDATE", good)
    request("secret-update-key-dropped.json", secret_object({k: v for k, v in GOOD_DATA.items() if k != "secretAccessKey"}), "UPDATE", good)
    request("secret-update-http-endpoint.json", secret_object(dict(GOOD_DATA, endpoint=b64("http://minio.storage.svc:9000"))), "UPDATE", good)
    request("secret-update-foreign-endpoint.json", secret_object(dict(GOOD_DATA, endpoint=b64("https://s3.amazonaws.com"))), "UPDATE", good)
    relabelled = secret_object(GOOD_DATA)
    relabelled["metadata"]["labels"] = {"rotated-by": "ops"}
    request("secret-update-labels-only.json", relabelled, "UPDATE", good)
    request("secret-delete.json", None, "DELETE", good)
    # An endpoint the rules refuse, moved to another refused host: a new problem, not the old one.
    insecure = secret_object(dict(GOOD_DATA, endpoint=b64("http://minio.storage.svc:9000")))
    request("secret-update-endpoint-moved.json", secret_object(dict(GOOD_DATA, endpoint=b64("http://minio.attacker.example:9000"))), "UPDATE", insecure)
    # A broken Secret repaired in steps: the endpoint first, the missing key still missing.
    keyless = {k: v for k, v in GOOD_DATA.items() if k != "accessKeyId"}
    request("secret-update-partial-repair.json", secret_object(keyless), "UPDATE", secret_object(dict(keyless, endpoint=b64("http://minio.storage.svc:9000"))))
    # A Secret held by a finalizer while being deleted still serves its entries.
    terminating = secret_object(GOOD_DATA)
    terminating["metadata"].update(deletionTimestamp="2026-12-05T00:00:00Z", finalizers=["example.com/hold"])
    request("secret-update-terminating-emptied.json", dict(terminating, data=dict(GOOD_DATA, accessKeyId="")), "UPDATE", terminating)
    request("secret-create-unnamed.json", secret_object({"password": b64("FAKE-SECRET-ACCESS-KEY-DO-NOT-USE")}, name="unrelated-app-secret"))
    # The audit scanner replays a stored Secret as a CREATE without a user.
    audit = admission_request("secret-audit-scan", SECRET_GVK, SECRET_GVR, secret_object(dict(GOOD_DATA, accessKeyId="")))
    audit["userInfo"] = {}  # the audit scanner's requests carry no user
    write_json("secret-audit-broken.json", audit)
    tls = secret_object({"tls.crt": b64("FAKE CERT"), "tls.key": b64("FAKE KEY")}, name=SECRET_NAME, kind="kubernetes.io/tls")
    request("secret-create-tls.json", tls)

    write_session("session-guard-named.yml", [list_exchange([sample, other, leaving])])
    write_session("session-guard-retiring.yml", [list_exchange([other, leaving])])
    write_session("session-guard-list-denied.yml", [list_exchange(error=(
        'ApiError: dittoservers.dittofs.com is forbidden: User "system:serviceaccount:kubewarden:dittofs-s3-policy-server" '
        'cannot list resource "dittoservers" in API group "dittofs.dittofs.com" in the namespace "dittofs-system": Forbidden'))])


# --- Lifecycle gaps (issue #22 item 4) ------------------------------------------------------------

def lifecycle_gap_fixtures(sample):
    """StatefulSet writes after a failed lookup, and workloads of a DittoServer that dropped spec.s3."""
    ditto = copy.deepcopy(sample)
    ditto["metadata"]["uid"] = "7d1e3c2a-0000-4000-8000-000000000001"
    name = ditto["metadata"]["name"]

    def sts_request(file, obj, old):
        write_json(file, admission_request(file.removesuffix(".json"), STATEFULSET_GVK, STATEFULSET_GVR, obj, "UPDATE", old))

    # The previous template had no AWS env; operator v0.12 renders creds-v2, which is missing.
    first = operator_statefulset(ditto)
    first["spec"]["template"]["spec"]["containers"][0]["env"] += injected_env("creds-v2")
    sts_request("statefulset-update-first-creds-v2.json", first, operator_statefulset(ditto))
    renamed = copy.deepcopy(ditto)
    renamed["spec"]["s3"]["credentialsSecretRef"]["secretName"] = "creds-v2"
    write_session("session-workload-renamed-missing.yml", [
        exchange("dittofs.dittofs.com/v1alpha1", "DittoServer", name, payload=json.dumps(renamed, separators=(",", ":"))),
        secret_exchange(name="creds-v2", error=not_found("v1", "Secret", "creds-v2"))])
    # A person removes AWS_ENDPOINT_URL from the stored template while the DittoServer is unreadable.
    stored = injected_statefulset(ditto, ORIGINAL_HASH)
    edited = copy.deepcopy(stored)
    env = edited["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [entry for entry in env if entry["name"] != "AWS_ENDPOINT_URL"]
    sts_request("statefulset-update-endpoint-removed.json", edited, stored)


def main():
    shared = Path(sys.argv[1] if len(sys.argv) > 1 else HERE.parent.parent / "shared" / "dittofs")
    sample = yaml.safe_load((shared / "sample-dittoserver-s3.yaml").read_text())
    dittoserver_fixtures(copy.deepcopy(sample))
    workload_fixtures(copy.deepcopy(sample))
    hostile_fixtures(copy.deepcopy(sample))
    secret_guard_fixtures(copy.deepcopy(sample))
    lifecycle_gap_fixtures(copy.deepcopy(sample))


if __name__ == "__main__":
    main()
