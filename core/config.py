"""Settings: the one place that reads the environment (prefix QWENFIX_, `.env` supported)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    public_url: str = "http://127.0.0.1:8000"  # where job links in comments point
    commit_author_name: str = "qwenfix[bot]"
    commit_author_email: str = "qwenfix[bot]@users.noreply.github.com"
    app_slug: str = "qwenfix"  # its bot is `<slug>[bot]`: what that bot causes starts no job

    # state and queue
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file in data_dir
    broker_url: str = ""  # empty: embedded filesystem broker in data_dir, in-process worker
    sweep_interval_s: float = 30.0
    max_body_bytes: int = 25 * 1024 * 1024

    # model
    llm_base_url: str = ""
    llm_api_key: SecretStr = SecretStr("")
    llm_model: str = "qwen3-coder-plus"
    llm_timeout_s: float = 120.0
    llm_max_retries: int = 3
    # {"model": {"input": 0.8, "cached_input": 0.08, "output": 3.2}}, per million tokens
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
    sandbox_memory_mb: int = 2048
    sandbox_cpus: float = 1.0
    sandbox_pids: int = 256
    sandbox_command_timeout_s: float = 600.0
    sandbox_output_bytes: int = 64_000
    sandbox_allow_setup_network: bool = False

    # workspaces
    mirror_dir: Path | None = None  # default: data_dir / "mirrors"
    mirror_disk_budget_mb: int = 10_240

    log_level: str = "INFO"
    log_json: bool = False

    @model_validator(mode="after")
    def _defaults_from_data_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'qwenfix.db').resolve()}"
        if self.mirror_dir is None:
            self.mirror_dir = self.data_dir / "mirrors"
        if self.audit_dir is None or str(self.audit_dir) in ("", "."):  # an empty line in .env
            self.audit_dir = self.data_dir / "audit"
        return self

    @property
    def embedded_broker(self) -> bool:
        return not self.broker_url

    @property
    def private_key_pem(self) -> str:
        if self.private_key.get_secret_value():
            return self.private_key.get_secret_value()
        if self.private_key_path:
            return self.private_key_path.read_text()
        return ""

    def secrets(self) -> list[str]:
        """Values that must never appear in logs, comments, trajectories or the sandbox."""
        values = [
            self.webhook_secret.get_secret_value(),
            self.llm_api_key.get_secret_value(),
            self.private_key_pem,
        ]
        return [v for v in values if v and len(v) >= 6]


@lru_cache
def get_settings() -> Settings:
    return Settings()
