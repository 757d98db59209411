#!/bin/sh
# Build stages only: trust extra CA certificates (a TLS-intercepting proxy's) for apt over https,
# pip (PIP_CERT below) and Java/Maven (Debian's ca-certificates-java hook rebuilds
# /etc/ssl/certs/java/cacerts from them). Reads a PEM bundle from the BuildKit secret
# `extra_ca` (/run/secrets/extra_ca) or from the build arg EXTRA_CA_CERTS; no-op without either.
# One file per certificate: the Java hook imports only the first certificate of a file.
set -eu
src=/run/secrets/extra_ca
if [ ! -s "$src" ]; then
  [ -n "${EXTRA_CA_CERTS:-}" ] || { echo "no extra CA certificates given"; exit 0; }
  src=/tmp/extra-ca.pem; printf '%s\n' "$EXTRA_CA_CERTS" > "$src"
fi
mkdir -p /usr/local/share/ca-certificates/lakelab-extra
awk '/-----BEGIN CERTIFICATE-----/{n++} n{print > ("/usr/local/share/ca-certificates/lakelab-extra/ca-" n ".crt")}' "$src"
update-ca-certificates >/dev/null 2>&1 || update-ca-certificates
echo "trusting $(ls /usr/local/share/ca-certificates/lakelab-extra | wc -l) extra CA certificates"
rm -f /tmp/extra-ca.pem
