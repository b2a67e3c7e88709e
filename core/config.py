"""Settings: the one place that reads the environment (prefix QWENFIX_, `.env` supported)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import stored_app


class ModelPrice(BaseModel):
    """What one model costs, per million tokens, in the operator's currency."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)  # unset: the input price
    output: float = Field(ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QWENFIX_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # GitHub App
    webhook_secret: SecretStr = SecretStr("")
    app_id: str = ""
    private_key: SecretStr = SecretStr("")
    private_key_path: Path | None = None
    github_api_url: str = "https://api.github.com"
    github_url: str = ""  # web pages (App registration, sign-in); empty: from github_api_url
    github_api_version: str = ""  # X-GitHub-Api-Version; empty: what the server supports
    public_url: str = "http://127.0.0.1:8000"  # where job links in comments point
    # its bot is `<slug>[bot]`: what that bot causes starts no job; setup stores the registered one
    app_slug: str = "qwenfix"
    client_id: str = ""  # the App's OAuth client, for signing people in
    client_secret: SecretStr = SecretStr("")
    store_app_credentials: bool = True  # False: setup shows them once instead of writing them

    # people: who signs in to the dashboard and API
    admins: str = ""  # GitHub logins, comma-separated: see every job, the setup page
    metrics_token: SecretStr = SecretStr("")  # bearer token for /metrics; empty: /metrics refused
    session_secret: SecretStr = SecretStr("")  # signs cookies; empty: a random one in data_dir
    session_days: float = 7.0
    access_cache_s: float = 300.0  # how long what GitHub says a person may read is reused
    commit_author_name: str = "qwenfix[bot]"
    commit_author_email: str = "qwenfix[bot]@users.noreply.github.com"

    # state and queue
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file in data_dir
    broker_url: str = ""  # empty: embedded filesystem broker in data_dir, in-process worker
    sweep_interval_s: float = 30.0
    job_time_limit_s: float = 3600.0  # wall time of one job (core/queue.py: how it is enforced)
    reconcile_interval_s: float = 3600.0  # installations re-read from GitHub (and at start)
    max_body_bytes: int = 25 * 1024 * 1024

    # jobs: leases, retries, takeovers
    job_lease_s: float = 300.0  # a running job renews its lease every third of this
    job_max_retries: int = 10  # transient failures / busy-lock waits before a job fails
    job_max_takeovers: int = 3  # lost workers before a job fails

    # GitHub's rate limits and missed deliveries
    github_secondary_backoff_s: float = 60.0  # least wait after a secondary rate limit without Retry-After
    github_write_interval_s: float = 1.0  # between content-creating requests of one installation
    github_max_wait_s: float = 900.0  # longer waits send the job back to the queue instead
    github_request_reserve: int = 100  # below this many requests left, progress updates are skipped
    redeliver_interval_s: float = 300.0  # how often the sweep looks for failed deliveries (0: never)
    redeliver_lookback_h: float = 72.0  # GitHub keeps deliveries (and allows redelivery) for 3 days

    # model
    llm_base_url: str = ""
    llm_api_key: SecretStr = SecretStr("")
    llm_model: str = "qwen3-coder-plus"
    llm_timeout_s: float = 120.0
    llm_max_retries: int = 3
    # {"model": {"input": 0.8, "cached_input": 0.08, "output": 3.2}}, per million tokens: the service's
    # costs and budgets, and `qwenfix bench`'s
    llm_prices: dict[str, ModelPrice] = Field(default_factory=dict)

    # budgets: operator defaults, per installation (organization) and per repository; 0 = no limit.
    # An organization may lower them (never raise them) in its `.github` repository's qwen.yml.
    budget_org_tokens_per_day: int = Field(0, ge=0)
    budget_org_tokens_per_month: int = Field(0, ge=0)
    budget_org_cost_per_day: float = Field(0, ge=0)
    budget_org_cost_per_month: float = Field(0, ge=0)
    budget_org_concurrent_jobs: int = Field(0, ge=0)
    budget_org_repair_jobs_per_day: int = Field(0, ge=0)
    budget_repo_tokens_per_day: int = Field(0, ge=0)
    budget_repo_tokens_per_month: int = Field(0, ge=0)
    budget_repo_cost_per_day: float = Field(0, ge=0)
    budget_repo_cost_per_month: float = Field(0, ge=0)
    budget_repo_concurrent_jobs: int = Field(0, ge=0)
    budget_repo_repair_jobs_per_day: int = Field(0, ge=0)

    # audit trail and fix outcomes
    audit_retention_days: int = Field(365, ge=0)  # 0: keep every record
    audit_dir: Path | None = None  # default: data_dir / "audit" (redacted model requests)
    outcome_open_days: int = Field(14, ge=1)  # a fix pull request still open this long is reported so

    # sandbox
    sandbox_engine: str = "auto"  # auto | docker | bwrap
    sandbox_image: str = "qwenfix-sandbox:bookworm"
    sandbox_images: str = ""  # globs of images repositories may name (sandbox.image); empty: the default only
    sandbox_memory_mb: int = 2048
    sandbox_cpus: float = 1.0
    sandbox_pids: int = 256
    sandbox_command_timeout_s: float = 600.0
    sandbox_output_bytes: int = 64_000
    sandbox_allow_setup_network: bool = False
    sandbox_disk_mb: int = Field(default=4096, gt=0)  # what one job's sandboxes may write, together

    # security gate: semgrep rules of the operator's (a local directory), used when semgrep is installed
    semgrep_rules: Path | None = None
    sandbox_toolchain_images: str = ""  # python:3.12=img,node:20=img2 or the same as a JSON object
    sandbox_pip_index_url: str = ""  # PIP_INDEX_URL (and uv's index) in the setup sandbox
    sandbox_npm_registry: str = ""  # npm_config_registry in the setup sandbox
    sandbox_package_cache: Path | None = None  # read-only: wheels/ (pip find-links) and npm/ (npm cache)
    setup_cache_entries: int = 3  # setup products kept per repository (0: none)

    # workspaces
    mirror_dir: Path | None = None  # default: data_dir / "mirrors"
    mirror_disk_budget_mb: int = 10_240

    log_level: str = "INFO"
    log_json: bool = False

    _explicit: frozenset[str] = PrivateAttr(default=frozenset())
    _stored_stamp: int = PrivateAttr(default=0)

    @model_validator(mode="after")
    def _defaults_from_data_dir(self) -> Settings:
        self._explicit = frozenset(self.model_fields_set)  # from the environment or the caller
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'qwenfix.db').resolve()}"
        if self.mirror_dir is None:
            self.mirror_dir = self.data_dir / "mirrors"
        if self.audit_dir is None or str(self.audit_dir) in ("", "."):  # an empty line in .env
            self.audit_dir = self.data_dir / "audit"
        self._apply_stored_app()
        return self

    def _apply_stored_app(self) -> None:
        """Fill what setup stored (data dir) beneath what the environment says."""
        self._stored_stamp = stored_app.stamp(self.data_dir)
        key_set = {"private_key", "private_key_path"} & self._explicit
        for name, value in stored_app.load(self.data_dir).items():
            if name in self._explicit or (name == "private_key" and key_set):
                continue
            field = type(self).model_fields[name]
            setattr(self, name, SecretStr(value) if field.annotation is SecretStr else value)

    def from_environment(self, name: str) -> bool:
        """Whether the environment (or the caller) set ``name``, rather than a default or setup."""
        return name in self._explicit

    def current(self) -> Settings:
        """These settings, or a copy with the App credentials setup stored since they were read."""
        if stored_app.stamp(self.data_dir) == self._stored_stamp:
            return self
        fresh = self.model_copy()
        fresh._apply_stored_app()
        return fresh

    @property
    def github_web_url(self) -> str:
        """https://github.com, or https://HOST for GitHub Enterprise's https://HOST/api/v3."""
        if self.github_url:
            return self.github_url.rstrip("/")
        api = self.github_api_url.rstrip("/")
        if api in ("https://api.github.com", "http://api.github.com"):
            return "https://github.com"
        return api.removesuffix("/api/v3")

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS when people reach the app over HTTPS."""
        return self.public_url.lower().startswith("https://")

    @property
    def admin_logins(self) -> frozenset[str]:
        return frozenset(name.strip().lower() for name in self.admins.split(",") if name.strip())

    @property
    def app_configured(self) -> bool:
        """A GitHub App to act as: its id and private key are known."""
        return bool(str(self.app_id).strip() and self.private_key_pem.strip())

    @property
    def embedded_broker(self) -> bool:
        return not self.broker_url

    @property
    def private_key_pem(self) -> str:
        if self.private_key.get_secret_value():
            return self.private_key.get_secret_value()
        if self.private_key_path:
            try:
                return self.private_key_path.read_text()
            except OSError:
                return ""
        return ""

    @property
    def allowed_sandbox_images(self) -> list[str]:
        """The image globs `sandbox.image` must match (comma or space separated)."""
        patterns = [p for p in self.sandbox_images.replace(",", " ").split() if p]
        return patterns or [self.sandbox_image]

    def secrets(self) -> list[str]:
        """Values that must never appear in logs, comments, trajectories or the sandbox."""
        values = [
            self.webhook_secret.get_secret_value(),
            self.client_secret.get_secret_value(),
            self.metrics_token.get_secret_value(),
            self.session_secret.get_secret_value(),
            self.llm_api_key.get_secret_value(),
            self.private_key_pem,
        ]
        return [v for v in values if v and len(v) >= 6]


@lru_cache
def _from_environment() -> Settings:
    return Settings()


def get_settings() -> Settings:
    """The process's settings; App credentials that setup stores later are picked up."""
    settings = _from_environment()
    if settings.current() is not settings:
        _from_environment.cache_clear()
        settings = _from_environment()
    return settings
