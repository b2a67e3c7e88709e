"""`qwenfix doctor`: check every setting and dependency, and say how to fix what is missing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.health import check_broker, check_database
from core.config import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _webhook(settings: Settings) -> Check:
    if settings.webhook_secret.get_secret_value():
        return Check("webhook secret", True, "set")
    return Check("webhook secret", False, "not set: every webhook is refused with 401",
                 "register the App from the setup page (`qwenfix setup --org ORG` prints its link), "
                 "or set QWENFIX_WEBHOOK_SECRET to the secret entered in the GitHub App's settings")


def _github(settings: Settings) -> Check:
    if not settings.app_id or not settings.private_key_pem:
        return Check("GitHub App", False, "QWENFIX_APP_ID or the private key is missing",
                     "register the App from the setup page (`qwenfix setup --org ORG` prints its link), or "
                     "set QWENFIX_APP_ID and QWENFIX_PRIVATE_KEY_PATH (the .pem downloaded from the App page)")
    try:
        from core.github import GitHubApp

        name = GitHubApp(settings).describe_app()
        if name != settings.app_slug:
            return Check("GitHub App", False,
                         f"authenticated as app '{name}', but QWENFIX_APP_SLUG is '{settings.app_slug}': events its "
                         "own bot causes would not be recognised as the app's own",
                         f"set QWENFIX_APP_SLUG={name}")
        return Check("GitHub App", True, f"authenticated as app '{name}' at {settings.github_api_url}")
    except Exception as exc:  # noqa: BLE001 — report, don't crash
        return Check("GitHub App", False, f"cannot authenticate at {settings.github_api_url}: {exc}",
                     "check QWENFIX_APP_ID, the private key and QWENFIX_GITHUB_API_URL")


def _database(settings: Settings) -> Check:
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return Check("database", False, f"no database file yet at {url.removeprefix('sqlite:///')}",
                     "run `qwenfix db upgrade` (`qwenfix serve` also creates it)")
    problem = check_database(settings)
    if problem:
        return Check("database", False, problem, "check QWENFIX_DATABASE_URL and that the server is running")
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from core.db.migrate import alembic_config
    from core.db.session import engine_for

    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
    with engine_for(settings.database_url).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        return Check("database", False, f"schema at {current or 'nothing'}, code expects {head}",
                     "run `qwenfix db upgrade`")
    return Check("database", True, f"reachable, schema at {head}")


def _broker(settings: Settings) -> Check:
    if settings.embedded_broker:
        return Check("broker", True, f"embedded (files in {settings.data_dir / 'broker'}); "
                     "set QWENFIX_BROKER_URL=redis://… to run workers on other machines")
    problem = check_broker(settings)
    if problem:
        return Check("broker", False, problem, "check QWENFIX_BROKER_URL and that Redis is running")
    return Check("broker", True, "reachable")


def _sandbox(settings: Settings) -> Check:
    from workers.sandbox.engines import engine_status

    status = engine_status(settings.sandbox_image)
    usable = [name for name, ok, _ in status if ok]
    wanted = settings.sandbox_engine
    detail = "; ".join(f"{name}: {why}" for name, _, why in status)
    if wanted != "auto" and wanted not in usable:
        return Check("sandbox", False, f"{wanted} selected but not usable — {detail}",
                     "install docker.io and run `qwenfix sandbox build`, or set QWENFIX_SANDBOX_ENGINE=auto")
    if not usable:
        return Check("sandbox", False, detail, "install docker.io and run `qwenfix sandbox build`, or install bubblewrap")
    chosen = wanted if wanted != "auto" else usable[0]
    return Check("sandbox", True, f"using {chosen} — {detail}")


def _toolchain_images(settings: Settings) -> Check:
    from workers.sandbox.toolchains import (
        TOOLCHAINS_LABEL,
        ToolchainImagesError,
        image_toolchains,
        parse_toolchain_images,
    )

    name = "toolchain images"
    fix = "set QWENFIX_SANDBOX_TOOLCHAIN_IMAGES to python:3.12=IMAGE,node:20=IMAGE2 (or the same as JSON)"
    try:
        mapping = parse_toolchain_images(settings.sandbox_toolchain_images)
    except ToolchainImagesError as exc:
        return Check(name, False, f"QWENFIX_SANDBOX_TOOLCHAIN_IMAGES: {exc}", fix)
    default = image_toolchains(settings.sandbox_image)
    listed = ", ".join(f"{k} {v}" for k, v in sorted(default.items())) if default else "unknown (image not inspectable)"
    if not mapping:
        return Check(name, True, f"{settings.sandbox_image} provides {listed}; no other images mapped "
                     "(QWENFIX_SANDBOX_TOOLCHAIN_IMAGES)", required=False)
    problems, seen = [], []
    for entry in mapping:
        offered = image_toolchains(entry.image)
        label = f"{entry.toolchain}{':' + entry.version if entry.version else ''}={entry.image}"
        if offered is None:
            problems.append(f"{label}: image missing")
        elif entry.toolchain not in offered and offered != {"python": "3"}:
            problems.append(f"{label}: the image's {TOOLCHAINS_LABEL} label does not list {entry.toolchain}")
        else:
            seen.append(label)
    if problems:
        return Check(name, False, "; ".join(problems), "build or pull the images, or fix the mapping")
    return Check(name, True, f"{settings.sandbox_image} provides {listed}; mapped: {', '.join(seen)}")


def _model(settings: Settings) -> Check:
    if not settings.llm_base_url:
        return Check("model", False, "QWENFIX_LLM_BASE_URL is not set",
                     "point it at an OpenAI-compatible endpoint (DashScope, vLLM, Ollama) with its key and model")
    try:
        from workers.agent.llm import ModelClient

        models = ModelClient.from_settings(settings).list_models()
        found = settings.llm_model in models if models else True
        detail = f"reachable at {settings.llm_base_url}" + ("" if found else f"; model {settings.llm_model} not listed")
        return Check("model", found, detail, "" if found else "set QWENFIX_LLM_MODEL to a model the endpoint serves")
    except Exception as exc:  # noqa: BLE001
        return Check("model", False, f"unreachable at {settings.llm_base_url}: {exc}",
                     "check QWENFIX_LLM_BASE_URL and QWENFIX_LLM_API_KEY")


CHECKS: list[Callable[[Settings], Check]] = [_webhook, _github, _database, _broker, _sandbox, _toolchain_images,
                                             _model]


def collect(settings: Settings) -> list[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check(settings))
        except Exception as exc:  # noqa: BLE001 — one broken check must not hide the others
            results.append(Check(check.__name__.strip("_"), False, f"check crashed: {exc}"))
    return results


def run_checks(settings: Settings) -> int:
    from rich.console import Console

    from core.logs import redact

    console = Console()
    results = collect(settings)
    for result in results:
        mark = "[green]  ok[/]" if result.ok else "[red]FAIL[/]"
        console.print(f"{mark}  [bold]{result.name}[/]: {redact(result.detail, settings.secrets())}", highlight=False)
        if not result.ok and result.fix:
            console.print(f"      how to fix: {result.fix}", highlight=False)
    failed = [r for r in results if not r.ok and r.required]
    console.print(f"\n{len(results) - len(failed)} of {len(results)} checks passed")
    return 1 if failed else 0
