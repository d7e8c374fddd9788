#!/usr/bin/env bash
# Creates (or updates) the Kubernetes Secrets deploy/helm/values.yaml reads, from the same .env file
# docker compose reads (.env.example lists it), in the current kubectl namespace:
#
#   AIRFLOW_METADATA_URL=postgresql+psycopg2://airflow:PASSWORD@airflow-db.example.org:5432/airflow \
#   WAREHOUSE_ADDRESS=warehouse.example.org:5432/cdp \
#   deploy/helm/create-secrets.sh [ENV_FILE]
#
# AIRFLOW_METADATA_URL: Airflow's own metadata database (a Postgres of its own, not the warehouse's server).
# WAREHOUSE_ADDRESS: host:port/database of the warehouse; each login's URL is made from it and its password.
# The fernet key is AIRFLOW_FERNET_KEY from the env file or, when unset, one generated once (kept on re-runs,
# since it encrypts what the metadata database stores); the API and JWT keys likewise are generated once.
# tests/deploy/test_helm_values.py runs this with a stand-in kubectl and checks that it makes every Secret
# and key values.yaml names.
set -euo pipefail

ENV_FILE=${1:-.env}
KUBECTL=${KUBECTL:-kubectl}
[[ -r $ENV_FILE ]] || { echo "error: cannot read $ENV_FILE (copy .env.example and fill it in)" >&2; exit 2; }

# The env file as compose reads it: KEY=VALUE lines, the value taken as written (JSON included).
declare -A DOTENV
while IFS= read -r line || [[ -n $line ]]; do
  [[ $line =~ ^([A-Z_][A-Z0-9_]*)=(.*)$ ]] || continue
  DOTENV[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done < "$ENV_FILE"
value() { printf '%s' "${!1:-${DOTENV[$1]:-}}"; }  # the environment wins over the file

password() {
  local pw
  pw=$(value "$1")
  [[ -n $pw ]] || { echo "error: set $1 in $ENV_FILE" >&2; exit 2; }
  [[ $pw =~ ^[A-Za-z0-9._~-]{16,}$ ]] \
    || { echo "error: $1 must be URL-safe and 16 characters or more (openssl rand -hex 24)" >&2; exit 2; }
  printf '%s' "$pw"
}

put_secret() {  # NAME KEY=VALUE…: create or replace
  local name=$1
  shift
  local literals=()
  for pair in "$@"; do literals+=("--from-literal=$pair"); done
  "$KUBECTL" create secret generic "$name" "${literals[@]}" --dry-run=client -o yaml | "$KUBECTL" apply -f -
}

put_secret_once() {  # NAME KEY: a random key, made only when the Secret does not exist yet
  "$KUBECTL" get secret "$1" > /dev/null 2>&1 || put_secret "$1" "$2=$(openssl rand -hex 32)"
}

metadata_url=$(value AIRFLOW_METADATA_URL)
warehouse=$(value WAREHOUSE_ADDRESS)
[[ -n $metadata_url ]] || { echo "error: set AIRFLOW_METADATA_URL (Airflow's metadata database)" >&2; exit 2; }
[[ $warehouse =~ ^[^/@:]+(:[0-9]+)?/[^/]+$ ]] || { echo "error: set WAREHOUSE_ADDRESS to host:port/database" >&2; exit 2; }
metadata_server=${metadata_url#*@}
[[ ${metadata_server%%/*} != "${warehouse%%/*}" ]] \
  || { echo "error: Airflow's metadata needs a Postgres server of its own, not the warehouse's" >&2; exit 2; }

owner=$(password WAREHOUSE_OWNER_PASSWORD)
pipeline=$(password CDP_PIPELINE_PASSWORD)
webhook=$(password CDP_WEBHOOK_PASSWORD)
reconcile=$(password CDP_RECONCILE_PASSWORD)
dedupe=$(password CDP_DEDUPE_PASSWORD)
evidence=$(password CDP_EVIDENCE_PASSWORD)
funder_report=$(password CDP_FUNDER_REPORT_PASSWORD)
admin=$(password AIRFLOW_ADMIN_PASSWORD)

put_secret cdp-airflow-metadata "connection=$metadata_url"
fernet=$(value AIRFLOW_FERNET_KEY)
if [[ -n $fernet ]]; then
  put_secret cdp-airflow-fernet "fernet-key=$fernet"
else
  "$KUBECTL" get secret cdp-airflow-fernet > /dev/null 2>&1 \
    || put_secret cdp-airflow-fernet "fernet-key=$(openssl rand -base64 32 | tr '+/' '-_')"
fi
put_secret_once cdp-airflow-api-secret api-secret-key
put_secret_once cdp-airflow-jwt jwt-secret
put_secret cdp-airflow-admin "AIRFLOW_ADMIN_PASSWORD=$admin"  # the migration job only

put_secret cdp-warehouse \
  "AIRFLOW_CONN_WAREHOUSE=postgres://cdp_pipeline:$pipeline@$warehouse" \
  "AIRFLOW_CONN_WAREHOUSE_WEBHOOK=postgres://cdp_webhook_intake:$webhook@$warehouse" \
  "AIRFLOW_CONN_WAREHOUSE_RECONCILE=postgres://cdp_reconcile_run:$reconcile@$warehouse" \
  "AIRFLOW_CONN_WAREHOUSE_DEDUPE=postgres://cdp_dedupe_run:$dedupe@$warehouse" \
  "AIRFLOW_CONN_WAREHOUSE_EVIDENCE=postgres://cdp_evidence_run:$evidence@$warehouse" \
  "AIRFLOW_CONN_WAREHOUSE_FUNDER_REPORT=postgres://cdp_funder_report_run:$funder_report@$warehouse"
# The owner and the logins' passwords: for the migration job's `cdp migrate` and `cdp warehouse logins` only.
put_secret cdp-warehouse-owner \
  "CDP_MIGRATIONS_URL=postgres://cdp_owner:$owner@$warehouse" \
  "CDP_PIPELINE_PASSWORD=$pipeline" "CDP_WEBHOOK_PASSWORD=$webhook" \
  "CDP_RECONCILE_PASSWORD=$reconcile" "CDP_DEDUPE_PASSWORD=$dedupe" "CDP_EVIDENCE_PASSWORD=$evidence" \
  "CDP_FUNDER_REPORT_PASSWORD=$funder_report"

# Sources, Slack and webhook secrets; an unused one is empty, as compose leaves it.
connections=()
for name in MOODLE SALESFORCE STRIPE LEDGER TYPEFORM ZIGPOLL SURVEYMONKEY REFERRALHERO GALAXY ZENDESK \
            CERTIFICATES SLACK_ALERTS WEBHOOK_TYPEFORM WEBHOOK_ZIGPOLL WEBHOOK_REGISTRATION; do
  connections+=("AIRFLOW_CONN_$name=$(value "AIRFLOW_CONN_$name")")
done
put_secret cdp-connections "${connections[@]}"
echo "secrets ready: helm install cdp apache-airflow/airflow --version 1.21.0 -f deploy/helm/values.yaml"
