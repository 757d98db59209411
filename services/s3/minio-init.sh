#!/bin/bash
# Compose mode's S3 bootstrap, run by the `s3-init` job (mc image) on every `docker compose up`:
# the buckets of resources.yaml (versioned where declared) and, for each declared user, a MinIO
# user with the policy in policies/<user>.json. Natively SeaweedFS gets the same declarations from
# services/s3/service.py. Idempotent. Uses only bash builtins and mc: the mc image has nothing else.
#
# Environment: LAKELAB_S3_ENDPOINT and the admin keys LAKELAB_S3_ACCESS_KEY/LAKELAB_S3_SECRET_KEY,
# plus each user's key variables named in resources.yaml (access_key_env, secret_key_env).
set -euo pipefail

here="${BASH_SOURCE[0]%/*}"
[[ $here == "${BASH_SOURCE[0]}" ]] && here=.
resources="${LAKELAB_RESOURCES:-$here/../../resources.yaml}"

buckets=() versioned=() users=()
declare -A access_env=() secret_env=()
section="" item=""
while IFS= read -r line || [[ -n $line ]]; do
    line="${line%%#*}"
    if [[ $line =~ ^([a-z_]+): ]]; then
        section="${BASH_REMATCH[1]}"
    elif [[ $line =~ ^[[:space:]]*-[[:space:]]+name:[[:space:]]*([A-Za-z0-9._-]+) ]]; then
        item="${BASH_REMATCH[1]}"
        case $section in
            buckets) buckets+=("$item") ;;
            users) users+=("$item") ;;
        esac
    elif [[ $section == buckets && $line =~ ^[[:space:]]+versioning:[[:space:]]*true ]]; then
        versioned+=("$item")
    elif [[ $section == users && $line =~ ^[[:space:]]+(access|secret)_key_env:[[:space:]]*([A-Za-z0-9_]+) ]]; then
        if [[ ${BASH_REMATCH[1]} == access ]]; then
            access_env[$item]="${BASH_REMATCH[2]}"
        else
            secret_env[$item]="${BASH_REMATCH[2]}"
        fi
    fi
done < "$resources"
(( ${#buckets[@]} )) || { echo "no buckets found in $resources" >&2; exit 1; }

mc alias set lake "$LAKELAB_S3_ENDPOINT" "$LAKELAB_S3_ACCESS_KEY" "$LAKELAB_S3_SECRET_KEY" >/dev/null

for bucket in "${buckets[@]}"; do
    mc mb --ignore-existing "lake/$bucket"
done
for bucket in "${versioned[@]}"; do
    mc version enable "lake/$bucket"
done

for user in "${users[@]}"; do
    access_var="${access_env[$user]:?user $user: no access_key_env in $resources}"
    secret_var="${secret_env[$user]:?user $user: no secret_key_env in $resources}"
    access="${!access_var:?user $user: set $access_var (see .env.sample)}"
    secret="${!secret_var:?user $user: set $secret_var (see .env.sample)}"
    policy="lakelab-$user"
    mc admin policy create lake "$policy" "$here/policies/$user.json"
    mc admin user add lake "$access" "$secret"
    # Attaching a policy that is already attached is an error in mc: attach only when missing.
    if [[ "$(mc admin user info lake "$access")" != *"$policy"* ]]; then
        mc admin policy attach lake "$policy" --user "$access"
    fi
done
echo "S3 ready: ${#buckets[@]} buckets, ${#users[@]} users"
