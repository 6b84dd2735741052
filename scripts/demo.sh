#!/usr/bin/env bash
# Evaluates the bundled sample requests with the annotated module and prints, for each,
# the verdict, the message, the warnings and the decoded JSON Patch.
set -euo pipefail
cd "$(dirname "$0")/.."
KWCTL=${KWCTL:-$(command -v kwctl || echo target/tool/policy-runner)}
MODULE=${MODULE:-annotated-policy.wasm}

# description | request | replay session | settings
samples=(
  "Sample DittoServer, Secret complete|dittoserver-sample-create.json|session-secret-found.yml|{}"
  "Sample DittoServer, Secret missing (default secretCheck: warn)|dittoserver-sample-create.json|session-secret-missing.yml|{}"
  "Sample DittoServer, Secret missing, secretCheck: reject|dittoserver-sample-create.json|session-secret-missing.yml|{\"secretCheck\":\"reject\"}"
  "Sample DittoServer, Secret incomplete|dittoserver-sample-create.json|session-secret-incomplete.yml|{}"
  "Sample DittoServer, endpoint outside allowedEndpointHosts|dittoserver-sample-create.json|session-secret-aws-endpoint.yml|{\"allowedEndpointHosts\":[\"*.cubbit.eu\"]}"
  "Sample DittoServer, policy-server may not read Secrets|dittoserver-sample-create.json|session-secret-denied.yml|{}"
  "DittoServer whose secretName is not a DNS-1123 name|dittoserver-bad-secret-name.json|session-empty.yml|{}"
  "DittoServer with region and bucket but no credentialsSecretRef|dittoserver-region-bucket-without-ref.json|session-empty.yml|{}"
  "Operator's StatefulSet CREATE: env and hash injected into the pod template|statefulset-create.json|session-workload-found.yml|{}"
  "StatefulSet UPDATE after a Secret rotation: new hash, pods roll|statefulset-update-injected.json|session-workload-rotated.yml|{}"
  "StatefulSet UPDATE, DittoServer unreadable: the previous env and hash are kept|statefulset-update-reconciled.json|session-workload-ditto-missing.yml|{}"
  "DittoFS Pod CREATE: env and hash injected|pod-create.json|session-workload-found.yml|{}"
  "DittoFS Pod CREATE, Secret missing: env only|pod-create.json|session-workload-secret-missing.yml|{}"
  "DittoFS Pod with a conflicting AWS_REGION (onEnvConflict: reject)|pod-create-conflict.json|session-workload-found.yml|{}"
  "Sample DittoServer written by a user who may not read its Secret (secretAccessCheck: reject)|dittoserver-sample-create.json|session-access-refused.yml|{}"
  "DittoServer UPDATE of spec.image alone, by a user who may not read its Secret|dittoserver-update-image.json|session-developer-refused.yml|{}"
  "DittoFS Pod CREATE with AWS_ENDPOINT_URL_S3, a route around the endpoint rules (onCredentialRoute: reject)|pod-create-endpoint-override.json|session-workload-found.yml|{}"
  "DittoFS Pod CREATE, the Secret's endpoint is outside allowedEndpointHosts|pod-create.json|session-workload-found.yml|{\"allowedEndpointHosts\":[\"*.example.com\"]}"
  "Non-DittoFS Pod: untouched, no lookup|pod-create-not-dittofs.json|session-empty.yml|{}"
  "verify mode: Pod injected before a Secret rotation|pod-create-injected.json|session-workload-rotated.yml|{\"workloads\":\"verify\"}"
  "Secret guard: a good rotation of the Secret a DittoServer names|secret-update-rotated.json|session-guard-named.yml|{}"
  "Secret guard: a bad rotation that empties accessKeyId|secret-update-emptied.json|session-guard-named.yml|{}"
  "Secret guard: deleting the Secret a DittoServer names|secret-delete.json|session-guard-named.yml|{}"
  "Secret guard: a Secret no DittoServer names|secret-create-unnamed.json|session-guard-named.yml|{}"
)

for sample in "${samples[@]}"; do
  IFS='|' read -r description request session settings <<<"$sample"
  echo "== $description"
  echo "   request: test_data/$request  session: test_data/$session  settings: $settings"
  response=$("$KWCTL" run --request-path "test_data/$request" --settings-json "$settings" \
    --allow-context-aware --replay-host-capabilities-interactions "test_data/$session" "$MODULE" 2>/dev/null)
  jq -r '"   verdict: " + (if .allowed then "ACCEPTED" else "REJECTED" end)
         + (if .status.message then "\n   message: " + .status.message else "" end)
         + ((.warnings // []) | map("\n   warning: " + .) | join(""))' <<<"$response"
  if [[ $(jq -r '.patch // empty' <<<"$response") ]]; then
    echo "   patch:"
    jq -r .patch <<<"$response" | base64 -d | jq -c '.[]' | sed 's/^/     /'
  fi
  echo
done
