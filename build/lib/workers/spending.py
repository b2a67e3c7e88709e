"""One job's spending: its budgets (the operator's, lowered by the organization), whether it may start,
and a meter on its model client that refuses a request once a budget is used up and records the usage
of each answered one (for budgets, reports and the audit trail).

A job over budget says so on its pull request — which budget, its limit, when it resets — once per pull
request per day; a job over the concurrency budget waits in the queue instead.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import timedelta

from core import audit, budgets, jobs
from core.budgets import Limits, Refusal
from core.db.models import ModelCall, utcnow
from core.db.session import session_scope
from core.pricing import cost
from workers.agent.llm import ModelClient, ModelReply, OverBudget, Usage, model_client
from workers.context import Outcome, Transient
from workers.github import messages
from workers.github.job import GitHubJob, call, github_app
from workers.github.org_config import read_org_budgets

NOTICE_TTL = timedelta(days=2)  # longer than the day it stands for
WAIT_S = 30.0


class JobSpending:
    def __init__(self, gj: GitHubJob) -> None:
        self.gj = gj
        job = gj.ctx.job
        self.installation_id, self.repo, self.job_id = job.installation_id, job.repo, job.id
        self.owners = {"organization": job.repo.split("/", 1)[0], "repository": job.repo}
        self._limits: dict[str, Limits] | None = None
        self.refusal: Refusal | None = None  # set when a budget stopped the job mid-way
        self.calls = 0
        self.usage = Usage()
        self.cost: float | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------- limits

    @property
    def limits(self) -> dict[str, Limits]:
        """Read once per job: the organization's qwen.yml may lower the operator's budgets."""
        if self._limits is None:
            settings = self.gj.ctx.settings
            org, record = call(read_org_budgets, github_app(settings), self.installation_id,
                               self.owners["organization"])
            self._limits, ignored = budgets.effective(settings, org)
            effective = json.dumps({k: v.model_dump() for k, v in self._limits.items()}, sort_keys=True)
            self.gj.ctx.trail.record("config", **record, ignored=ignored,
                                     effective_budgets_sha256=hashlib.sha256(effective.encode()).hexdigest())
        return self._limits

    def _check(self, starting: bool, repair: bool) -> Refusal | None:
        limits, now = self.limits, utcnow()
        if not any(v is not None for lim in limits.values() for v in lim.model_dump().values()):
            return None  # nothing to count
        with session_scope(self.gj.ctx.settings.database_url) as session:
            for scope, owner in self.owners.items():
                spent = budgets.spent(session, scope, self.installation_id, self.repo, now, self.job_id,
                                      with_jobs=starting)
                refusal = budgets.exceeded(scope, owner, limits[scope], spent, now, starting, repair)
                if refusal is not None:
                    return refusal
        return None

    # ---------------------------------------------------------------------------- starting

    def refuse_start(self, repair: bool) -> Outcome | None:
        """None: the job may start. Over the concurrency budget it waits (Transient); over another
        budget it ends here, saying so on the pull request once a day."""
        refusal = self._check(starting=True, repair=repair)
        if refusal is None:
            return None
        if refusal.waits:
            raise Transient(f"waiting: {refusal.describe()} is reached", retry_after=WAIT_S)
        self._announce(refusal, stopped=False)
        return Outcome("skipped", f"over budget: {refusal.describe()}")

    # ---------------------------------------------------------------------------- the model

    def client(self) -> ModelClient | None:
        """The operator's model, metered for this job; None when none is configured."""
        client = model_client(self.gj.ctx.settings)
        return client.metered(self) if client is not None else None

    def before_request(self, model: str) -> None:
        if self.refusal is None:
            refusal = self._check(starting=False, repair=False)
            with self._lock:
                self.refusal = self.refusal or refusal
        if self.refusal is not None:
            raise OverBudget(f"over budget: {self.refusal.describe()}")

    def after_request(self, model: str, request: dict, reply: ModelReply) -> None:
        settings, usage = self.gj.ctx.settings, reply.usage
        price = cost(settings.llm_prices, model, usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens)
        digest, kept = audit.keep_request(settings.audit_dir, request, self.gj.secrets)
        with session_scope(settings.database_url) as session:
            session.add(ModelCall(job_id=self.job_id, installation_id=self.installation_id, repo=self.repo,
                                  model=model, prompt_tokens=usage.prompt_tokens, cached_tokens=usage.cached_tokens,
                                  completion_tokens=usage.completion_tokens, cost=price))
            audit.add(session, "model", {
                "model": model, "prompt_tokens": usage.prompt_tokens, "cached_tokens": usage.cached_tokens,
                "completion_tokens": usage.completion_tokens, "estimated": usage.estimated, "cost": price,
                "request_sha256": digest, "request_text": kept, "latency_s": round(reply.latency_s, 3),
            }, job_id=self.job_id, installation_id=self.installation_id, repo=self.repo, secrets=self.gj.secrets)
        with self._lock:
            self.calls += 1
            self.usage += usage
            if price is not None:
                self.cost = (self.cost or 0.0) + price

    def totals(self) -> dict:
        with self._lock:
            return {"model_calls": self.calls, "prompt_tokens": self.usage.prompt_tokens,
                    "cached_tokens": self.usage.cached_tokens, "completion_tokens": self.usage.completion_tokens,
                    "tokens": self.usage.total, "cost": self.cost}

    # ---------------------------------------------------------------------------- saying so

    def stopped(self, fields: dict | None = None) -> Outcome:
        """The job ends because a budget ran out mid-way (its own comment and check run say so)."""
        assert self.refusal is not None
        self._announce(self.refusal, stopped=True)
        return Outcome("failed", f"over budget: {self.refusal.describe()}", fields or {})

    def _announce(self, refusal: Refusal, stopped: bool) -> None:
        gj = self.gj
        resets = refusal.resets_at.strftime("%Y-%m-%d %H:%M UTC") if refusal.resets_at else None
        headline, body = messages.over_budget(refusal.describe(), resets, stopped)
        first = self._first_notice_today()
        if gj.comment_id is not None or gj.check_run_id is not None:  # its own posts end with the reason
            if gj.comment_id is not None:
                gj.say(headline, body)
            if gj.check_run_id is not None:
                gj.check_run("completed", "neutral", "Over budget", body)
        elif first:
            gj.say(headline, body)

    def _first_notice_today(self) -> bool:
        pr = self.gj.target.pr_number
        if not pr:
            return False
        name = f"over-budget:{self.repo}#{pr}:{utcnow():%Y-%m-%d}"
        with session_scope(self.gj.ctx.settings.database_url) as session:
            return jobs.acquire_lock(session, name, f"job:{self.job_id}", NOTICE_TTL)
