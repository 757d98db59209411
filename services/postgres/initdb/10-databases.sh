#!/bin/bash
# Compose mode: the PostgreSQL databases of resources.yaml (`postgres_databases: [a, b]`), created
# by the postgres image's entrypoint when its volume is new. `lakelab apply` creates databases
# declared later, in both modes.
# (No `set -u`: the entrypoint sources a script that is not executable.)

resources="${LAKELAB_RESOURCES:-/lakelab/resources.yaml}"
line="$(grep -E '^postgres_databases:[[:space:]]*\[' "$resources")" \
    || { echo "no 'postgres_databases: [...]' line in $resources" >&2; exit 1; }
list="${line#*[}"
list="${list%%]*}"
for database in ${list//,/ }; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc --dbname postgres \
        -c "CREATE DATABASE \"$database\""
done
