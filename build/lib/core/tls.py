"""The process's one verifying TLS context, shared by every HTTP client (GitHub, the model).

Building one loads the CA bundle, ~50 ms: done per client, that was most of a job's GitHub time.
Honours SSL_CERT_FILE / SSL_CERT_DIR like httpx does by default."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=True)
