#!/usr/bin/env bash
# Feed the host's download cache into image builds without a registry and without putting it in
# the build context: import it as a local image, `lakelab/download-cache`, which the Dockerfile's
# builder stages read (`COPY --from=seed` / `RUN --mount=type=bind,from=seed`). Nothing of it
# reaches the final image except the jars the installer uses.
#   what: $LAKELAB_CACHE_DIR/m2 (Maven repo: jars and the Trino/Hive tarballs), the extracted
#         trino-server-*/ and hive-metastore-*/ releases, and wheels/ (a wheelhouse of
#         pyproject.toml's dependencies, built here with the project venv's pip: pyspark is an sdist).
#   skipped: maven/ and connect-plugins/ (the image's own install makes them from m2), *.partial, and cds/
#         (the host's class archives: the image runs without, and they change with every run).
# Idempotent: the image is labelled with a digest of the file list (names and sizes);
# an unchanged cache is not re-imported.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${LAKELAB_CACHE_DIR:-$HOME/.cache/lakelab}
TAG=${SEED_TAG:-lakelab/download-cache:latest}
DOCKER=${DOCKER:-docker}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$CACHE/wheels"
# The wheelhouse: pyproject.toml's dependencies, its notebooks extra and setuptools (the image installs the project
# with it); offline when the wheelhouse already has them, from PyPI (pip's own cache first) otherwise.
req=$(mktemp); trap 'rm -f "$req"' EXIT
"$PY" -c "import tomllib; p = tomllib.load(open('pyproject.toml','rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['notebooks']))" > "$req"
echo "setuptools>=70.1" >> "$req"  # with bdist_wheel built in
"$PY" -m pip wheel -q --no-index --find-links "$CACHE/wheels" --wheel-dir "$CACHE/wheels" -r "$req" 2>/dev/null \
  || "$PY" -m pip wheel -q --find-links "$CACHE/wheels" --wheel-dir "$CACHE/wheels" -r "$req"
# Release tarballs already extracted by the installer are not needed again (900 MB less to import).
EXCLUDES=(--exclude='./maven' --exclude='./connect-plugins' --exclude='./cds' --exclude='*.partial' --exclude='*.partial/*')
for dir in "$CACHE"/trino-server-* "$CACHE"/hive-metastore-*; do
  [ -d "$dir/lib" ] || continue
  case "$(basename "$dir")" in
    trino-server-*) EXCLUDES+=(--exclude="./m2/io/trino/trino-server/${dir##*-}/*.tar.gz") ;;
    hive-metastore-*) EXCLUDES+=(--exclude="./m2/org/apache/hive/hive-standalone-metastore-server/${dir##*-}/*.tar.gz") ;;
  esac
done
LIST=$(cd "$CACHE" && find . \( -path ./maven -o -path ./connect-plugins -o -path ./cds -o -name '*.partial' \) -prune -o -printf '%p %s\n' | sort | sha256sum | cut -c1-16)
LIST="$LIST-$(printf '%s\n' "${EXCLUDES[@]}" | sha256sum | cut -c1-8)"
if have=$($DOCKER image inspect -f '{{index .Config.Labels "lakelab.cache-digest"}}' "$TAG" 2>/dev/null) && [ "$have" = "$LIST" ]; then
  echo "cache seed $TAG is current ($LIST)"; exit 0
fi
echo "importing $CACHE as $TAG ($LIST)"
# The image holds the cache under /cache; owned by root, read-only use.
tar -C "$CACHE" --numeric-owner --owner=0 --group=0 "${EXCLUDES[@]}" --transform 's,^\.,cache,' -c . \
  | $DOCKER import -c "LABEL lakelab.cache-digest=$LIST" -m "lakelab download cache seed" - "$TAG" >/dev/null
$DOCKER image ls "$TAG"
