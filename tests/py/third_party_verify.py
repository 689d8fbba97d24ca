"""Verifies epic-audit evidence with third-party tools only (no epic-audit
code): securesystemslib for the DSSE envelope, sigstore-protobuf-specs for
the Sigstore bundle, sha256 for every subject.

    third_party_verify.py RUN_DIR PUBLIC_KEY_PEM

Prints one line per claim it proved and exits 0, or names the first failure
and exits 1.
"""
import base64
import copy
import hashlib
import json
import pathlib
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from sigstore_protobuf_specs.dev.sigstore.bundle.v1 import Bundle

run, pub = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
envelope = json.loads((run / "manifest.dsse.json").read_text())
key = SSlibKey.from_crypto(load_pem_public_key(pub.read_bytes()))
try:
    verified = Envelope.from_dict(copy.deepcopy(envelope)).verify([key], 1)
except Exception as e:  # securesystemslib's VerificationError and friends
    print(f"securesystemslib: REJECTED: {type(e).__name__}: {e}")
    sys.exit(1)
print(f"securesystemslib: signature valid, keyid {key.keyid} ({key.keytype}/{key.scheme})")
assert key.keyid in verified, verified

statement = json.loads(base64.b64decode(envelope["payload"]))
for s in statement["subject"]:
    got = hashlib.sha256((run / s["name"]).read_bytes()).hexdigest()
    if got != s["digest"]["sha256"]:
        print(f"sha256: {s['name']}: MODIFIED")
        sys.exit(1)
print(f"sha256: {len(statement['subject'])} subjects match; predicateType {statement['predicateType']}")

bundle_path = run / "manifest.sigstore.json"
bundle = Bundle.from_dict(json.loads(bundle_path.read_text()))
d = bundle.dsse_envelope
assert bundle.media_type == "application/vnd.dev.sigstore.bundle.v0.3+json", bundle.media_type
assert d.payload_type == envelope["payloadType"]
assert base64.b64encode(d.payload).decode() == envelope["payload"]
assert [base64.b64encode(s.sig).decode() for s in d.signatures] == [s["sig"] for s in envelope["signatures"]]
assert bundle.verification_material.public_key.hint == key.keyid, bundle.verification_material.public_key.hint
print(f"sigstore bundle: {bundle.media_type}, same envelope, public-key hint {bundle.verification_material.public_key.hint}")
