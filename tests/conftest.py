"""Shared fixtures: real services (PostgreSQL, Redis, Docker) and fake servers (GitHub, model)."""

pytest_plugins = [
    "tests.support.db",
    "tests.support.docker",
    "tests.support.git_http",
    "tests.support.fake_github",
    "tests.support.fake_openai",
    "tests.support.stack",
    "tests.support.packages",
]
