"""Mints JWTs with PyJWT, the reference Python implementation, for
agentd's API tests (tests/api/jwt/): fresh keys from `cryptography`, their
public JWKS, and tokens that must be accepted or refused.

Usage: python3 pyjwt_mint.py ISSUER AUDIENCE TENANT
Prints one JSON object: {"jwks": {...}, "tokens": {name: token}}.
"""

import base64
import hashlib
import hmac
import json
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    issuer, audience, tenant = sys.argv[1:4]
    now = int(time.time())
    keys = {
        "py-rsa": ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
        "py-ec": ("ES256", ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
        "py-ed": ("EdDSA", ed25519.Ed25519PrivateKey.generate(), OKPAlgorithm),
    }
    jwks = {"keys": []}
    for kid, (alg, private, algorithm) in keys.items():
        jwk = algorithm.to_jwk(private.public_key(), as_dict=True)
        jwk.update({"kid": kid, "use": "sig", "alg": alg})
        jwks["keys"].append(jwk)

    def claims(**overrides):
        c = {
            "iss": issuer,
            "aud": audience,
            "sub": "py-user",
            "tenant": tenant,
            "roles": ["admin"],
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
        }
        c.update(overrides)
        return c

    def sign(kid, **overrides):
        alg, private, _ = keys[kid]
        return jwt.encode(claims(**overrides), private, algorithm=alg, headers={"kid": kid})

    # Algorithm confusion: an HS256 token whose HMAC secret is the RSA
    # public key's PEM, which any client can download. PyJWT itself refuses
    # to use a PEM key as an HMAC secret, so this one is assembled by hand.
    public_pem = keys["py-rsa"][1].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "py-rsa"}).encode())
    payload = b64url(json.dumps(claims(tenant="victim")).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    hs256_public_key = f"{header}.{payload}.{b64url(mac)}"

    tokens = {
        "valid_rs256": sign("py-rsa"),
        "valid_es256": sign("py-ec"),
        "valid_eddsa": sign("py-ed"),
        "expired": sign("py-ec", exp=now - 3600, nbf=now - 7200),
        "not_yet_valid": sign("py-ed", nbf=now + 3600, exp=now + 7200),
        "wrong_audience": sign("py-rsa", aud="someone-else"),
        "wrong_issuer": sign("py-ec", iss="https://evil.example/"),
        "no_tenant": jwt.encode(
            {k: v for k, v in claims().items() if k != "tenant"},
            keys["py-ec"][1],
            algorithm="ES256",
            headers={"kid": "py-ec"},
        ),
        "alg_none": jwt.encode(claims(), None, algorithm="none", headers={"kid": "py-ec"}),
        "hs256_public_key": hs256_public_key,
    }
    print(json.dumps({"pyjwt": jwt.__version__, "jwks": jwks, "tokens": tokens}))


if __name__ == "__main__":
    main()
