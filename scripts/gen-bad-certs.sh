#!/usr/bin/env bash
# Regenerates TEST-ONLY defective certificates in fixtures/pki/bad, each for
# lab node 4 (127.0.1.4) and each with exactly one defect, for the transport
# checks' lab variants and unit tests. Needs fixtures/pki (gen-pki.sh).
set -euo pipefail
cd "$(dirname "$0")/../fixtures/pki"
out=bad
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
subj="/O=epic-audit TEST ONLY - not for production/CN=lab-node-4"
good_ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.1.4"
printf '%s\n' "$good_ext" > "$tmp/good.ext"

sign() { # key, out.crt, extfile, extra openssl x509 args...
  local key=$1 crt=$2 ext=$3; shift 3
  openssl req -new -key "$key" -subj "$subj" -out "$tmp/req.csr"
  openssl x509 -req -in "$tmp/req.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$crt" "$@" 2>/dev/null
}

# 1. RSA-2048, otherwise good.
openssl genrsa -out "$out/rsa2048.key" 2048 2>/dev/null
sign "$out/rsa2048.key" "$out/rsa2048.crt" "$tmp/good.ext" -sha256

# 2. Expired (2020-2021), otherwise good: needs `openssl ca` for fixed dates.
cp node4.key "$out/expired.key"
openssl req -new -key "$out/expired.key" -subj "$subj" -out "$tmp/exp.csr"
: > "$tmp/index.txt"; echo 1000 > "$tmp/serial"
cat > "$tmp/ca.cnf" <<CNF
[ ca ]
default_ca = tmp
[ tmp ]
database = $tmp/index.txt
new_certs_dir = $tmp
serial = $tmp/serial
policy = pol
default_md = sha256
unique_subject = no
[ pol ]
organizationName = optional
commonName = supplied
CNF
openssl ca -config "$tmp/ca.cnf" -cert ca.crt -keyfile ca.key -in "$tmp/exp.csr" \
  -out "$out/expired.crt" -startdate 20200101000000Z -enddate 20210101000000Z \
  -extfile "$tmp/good.ext" -batch -notext 2>/dev/null

# 3. Self-signed RSA-4096 with the right SAN and EKUs: only the issuer is wrong.
cp node4.key "$out/selfsigned.key"
openssl req -x509 -new -key "$out/selfsigned.key" -subj "$subj" -days 3650 -sha256 \
  -out "$out/selfsigned.crt" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
  -addext "extendedKeyUsage=serverAuth,clientAuth" \
  -addext "subjectAltName=IP:127.0.1.4"

# 4. SHA-1 signature (unit tests only; modern peers refuse it).
cp node4.key "$out/sha1.key"
sign "$out/sha1.key" "$out/sha1.crt" "$tmp/good.ext" -sha1

# 5. serverAuth only (the cluster bus needs clientAuth too).
printf '%s\n' "${good_ext/serverAuth,clientAuth/serverAuth}" > "$tmp/noclient.ext"
cp node4.key "$out/no-client-auth.key"
sign "$out/no-client-auth.key" "$out/no-client-auth.crt" "$tmp/noclient.ext" -sha256

# 6. SAN for another address (127.0.1.9).
printf '%s\n' "${good_ext/127.0.1.4/127.0.1.9}" > "$tmp/wrongsan.ext"
cp node4.key "$out/wrong-san.key"
sign "$out/wrong-san.key" "$out/wrong-san.crt" "$tmp/wrongsan.ext" -sha256

rm -f ca.srl
chmod 0644 "$out"/*.key
echo "defective test certificates written to $(pwd)/$out"
