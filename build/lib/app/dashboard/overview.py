"""The overview: jobs per repository and state, and success rate and model tokens per day as a
small chart drawn on the server (SVG, no script). Pure functions over job rows."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape

from core.jobs import as_aware

STATES = ("queued", "running", "succeeded", "failed", "skipped", "cancelled")


@dataclass(frozen=True)
class JobFacts:
    """What the overview needs of one job."""

    repo: str | None
    state: str
    created_at: datetime
    tokens: int


@dataclass(frozen=True)
class Day:
    day: date
    succeeded: int
    failed: int
    tokens: int

    @property
    def rate(self) -> float | None:
        """Share of finished repairs that succeeded (None on a day without any)."""
        done = self.succeeded + self.failed
        return self.succeeded / done if done else None


def tokens_of(usage: dict | None) -> int:
    usage = usage or {}
    return int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)


def by_repository(counted) -> list[tuple[str, dict[str, int], int]]:
    """(repository, count per state, total) from (repository, state, count) rows, busiest first."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for repo, state, count in counted:
        counts[repo or "(installation events)"][state] += count
    rows = [(repo, {s: c.get(s, 0) for s in STATES}, sum(c.values())) for repo, c in counts.items()]
    return sorted(rows, key=lambda row: (-row[2], row[0]))


def per_day(jobs: list[JobFacts], today: date, days: int = 14) -> list[Day]:
    first = today - timedelta(days=days - 1)
    succeeded, failed, tokens = Counter(), Counter(), Counter()
    for job in jobs:
        day = as_aware(job.created_at).date()
        if day < first or day > today:
            continue
        tokens[day] += job.tokens
        if job.state == "succeeded":
            succeeded[day] += 1
        elif job.state == "failed":
            failed[day] += 1
    return [Day(d, succeeded[d], failed[d], tokens[d])
            for d in (first + timedelta(days=i) for i in range(days))]


def totals(days: list[Day]) -> dict[str, float | int | None]:
    s, f = sum(d.succeeded for d in days), sum(d.failed for d in days)
    return {"succeeded": s, "failed": f, "rate": s / (s + f) if s + f else None,
            "tokens": sum(d.tokens for d in days)}


def chart_svg(days: list[Day], width: int = 720, height: int = 200) -> str:
    """Bars: model tokens per day (left scale); line and dots: success rate (right scale, 0–100 %)."""
    left, right, top, bottom = 56, 48, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(days), 1)
    peak = max((d.tokens for d in days), default=0) or 1
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="100%" role="img" aria-label="Success rate and model tokens per day">']
    for i in range(5):  # grid, and both scales
        y = top + plot_h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eaeef2"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#57606a">'
                     f'{_short(peak * (4 - i) / 4)}</text>')
        parts.append(f'<text x="{left + plot_w + 6}" y="{y + 4:.1f}" font-size="10" fill="#1a7f37">'
                     f'{100 - 25 * i}%</text>')
    points = []
    for i, day in enumerate(days):
        x = left + slot * i
        bar = plot_h * day.tokens / peak
        parts.append(f'<rect x="{x + slot * 0.18:.1f}" y="{top + plot_h - bar:.1f}" width="{slot * 0.64:.1f}" '
                     f'height="{bar:.1f}" fill="#b6e3ff"><title>{day.day}: {day.tokens} tokens</title></rect>')
        if i % max(1, len(days) // 7) == 0 or i == len(days) - 1:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{height - 10}" text-anchor="middle" font-size="10" '
                         f'fill="#57606a">{day.day.strftime("%b %d")}</text>')
        if day.rate is not None:
            points.append((x + slot / 2, top + plot_h * (1 - day.rate), day))
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1a7f37" stroke-width="2"/>')
    for x, y, day in points:
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#1a7f37"><title>{day.day}: '
                     f'{day.succeeded} of {day.succeeded + day.failed} succeeded</title></circle>')
    parts.append(f'<text x="{left}" y="10" font-size="10" fill="#0969da">model tokens</text>')
    parts.append(f'<text x="{left + plot_w}" y="10" text-anchor="end" font-size="10" fill="#1a7f37">'
                 f'{escape("success rate")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:.0f}"
