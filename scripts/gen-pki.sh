#!/usr/bin/env bash
# Regenerates the TEST-ONLY PKI in fixtures/pki: an RSA-4096 CA, one RSA-4096
# certificate per lab node (SAN = the node's loopback IP, EKU serverAuth +
# clientAuth because the Redis cluster bus is mutual TLS) and an RSA-4096
# client certificate for the auditor. These keys are public in this repository:
# never use them anywhere but the local lab.
set -euo pipefail
cd "$(dirname "$0")/../fixtures/pki"
days=3650
subj_prefix="/O=epic-audit TEST ONLY - not for production"

openssl genrsa -out ca.key 4096 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days "$days" -out ca.crt \
  -subj "$subj_prefix/CN=epic-audit lab CA (TEST ONLY)" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"

issue() { # name, subject CN, extfile contents
  local name=$1 cn=$2 ext=$3
  openssl genrsa -out "$name.key" 4096 2>/dev/null
  openssl req -new -key "$name.key" -out "$name.csr" -subj "$subj_prefix/CN=$cn"
  printf '%s\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
    -sha256 -days "$days" -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

for i in 1 2 3 4 5 6; do
  issue "node$i" "lab-node-$i" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.1.$i"
done
issue client "epic-audit auditor (TEST ONLY)" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
rm -f ca.srl
chmod 0644 ./*.key
echo "test PKI written to $(pwd)"
