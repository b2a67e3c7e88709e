"""The pytest fixtures: the app's key pair (one per session) and a fresh fake per test."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.fake_github.fake import FakeGitHub
from tests.support.fake_github.server import serve


@dataclass
class AppKey:
    app_id: int
    private_key_pem: str
    public_key_pem: str


@pytest.fixture(scope="session")
def github_app_key() -> AppKey:
    """One RSA key pair per test session for the fake GitHub App."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return AppKey(app_id=424242, private_key_pem=private, public_key_pem=public)


@pytest.fixture
def fake_github(tmp_path_factory: pytest.TempPathFactory, github_app_key: AppKey):
    """A fresh fake GitHub on 127.0.0.1 (API at ``.url``, git at ``.clone_url(full_name)``)."""
    root = tmp_path_factory.mktemp("fake-github-repos")
    fake = FakeGitHub(root, github_app_key.app_id, github_app_key.private_key_pem,
                      github_app_key.public_key_pem)
    thread = serve(fake)
    try:
        yield fake
    finally:
        thread.stop()
