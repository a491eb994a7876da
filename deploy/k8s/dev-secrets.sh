#!/usr/bin/env bash
# Makes the dev CA and the certificates a Keystream deployment needs with `keystream certs`, and
# prints the Secrets keystream-tls and keystream-registry-tls as YAML for `kubectl apply -f -`:
#
#   deploy/k8s/dev-secrets.sh [--namespace NS] [--dir DIR] [--cluster-domain DOMAIN] | kubectl apply -f -
#
# DIR (default .keystream-k8s) keeps the CA (made once) and the issued files: certs/admin.{crt,key,pem}
# is the admin's client certificate (User:CN=admin, a super user). Running it again re-issues every
# certificate from the same CA: applying the output rotates them (the broker reloads its TLS files).
# Nothing is sent anywhere; kubectl only formats the Secrets (--dry-run=client).
set -euo pipefail

NS=keystream
DIR=.keystream-k8s
DOMAIN=cluster.local
while [ $# -gt 0 ]; do
    case "$1" in
        --namespace|-n) NS="$2"; shift 2 ;;
        --dir) DIR="$2"; shift 2 ;;
        --cluster-domain) DOMAIN="$2"; shift 2 ;;
        *) echo "usage: $0 [--namespace NS] [--dir DIR] [--cluster-domain DOMAIN]" >&2; exit 2 ;;
    esac
done
KEYSTREAM="${KEYSTREAM:-keystream}"
KUBECTL="${KUBECTL:-kubectl}"
CA="$DIR/ca"
OUT="$DIR/certs"
umask 077
mkdir -p "$CA" "$OUT"

[ -f "$CA/ca.crt" ] || "$KEYSTREAM" certs init --dir "$CA" --cn "Keystream dev CA ($NS)" >&2

issue() { "$KEYSTREAM" certs issue --dir "$CA" --out "$OUT" --force "$@" >&2; }
# The brokers: the client Service, and every pod's name under the headless Service (advertised
# listeners). clientAuth too: the broker presents it to the registry to fetch schemas.
issue --name broker --server --client --cn keystream-broker \
    --san "DNS:keystream,DNS:keystream.$NS.svc,DNS:keystream.$NS.svc.$DOMAIN" \
    --san "DNS:*.keystream-headless.$NS.svc.$DOMAIN,DNS:keystream-headless.$NS.svc.$DOMAIN"
issue --name registry --server --cn keystream-registry \
    --san "DNS:keystream-registry,DNS:keystream-registry.$NS.svc,DNS:keystream-registry.$NS.svc.$DOMAIN"
issue --name schema-registry --client --cn schema-registry   # the registry's identity to the brokers
issue --name admin --client --cn admin                       # yours: a super user

secret() { "$KUBECTL" create secret generic "$@" --namespace "$NS" --dry-run=client -o yaml; }
secret keystream-tls --from-file=keystore.pem="$OUT/broker.pem" --from-file=ca.crt="$CA/ca.crt"
echo ---
secret keystream-registry-tls --from-file=keystore.pem="$OUT/registry.pem" \
    --from-file=client.pem="$OUT/schema-registry.pem" --from-file=ca.crt="$CA/ca.crt"
