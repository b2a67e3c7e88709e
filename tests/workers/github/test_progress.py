"""Progress reaches GitHub at most once per interval, the newest update is never lost, and the final
report is never overwritten by progress that was still waiting."""

from __future__ import annotations

import threading
import time

from workers.github.progress import ProgressPublisher


class Posts:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.event = threading.Event()

    def post(self, text: str):
        def do() -> None:
            self.seen.append(text)
            self.event.set()
        return do


def test_the_first_update_goes_out_at_once_and_only_the_newest_of_a_burst_follows():
    posts, publisher = Posts(), ProgressPublisher(interval_s=0.5)
    publisher.submit(posts.post("reproducing"))
    assert posts.seen == ["reproducing"]  # synchronous: the caller sees its errors
    posts.event.clear()
    for stage in ("attempt 1", "attempt 2", "validating"):
        publisher.submit(posts.post(stage))
    assert posts.seen == ["reproducing"]  # too soon: waits
    assert posts.event.wait(5)
    time.sleep(0.6)
    assert posts.seen == ["reproducing", "validating"]


def test_a_final_report_drops_waiting_progress_and_nothing_is_posted_after_close():
    posts, publisher = Posts(), ProgressPublisher(interval_s=0.3)
    publisher.submit(posts.post("reproducing"))
    publisher.submit(posts.post("attempt 1"))  # waiting for the interval
    with publisher.superseding():
        posts.seen.append("final")
    time.sleep(0.6)
    assert posts.seen == ["reproducing", "final"]

    publisher.submit(posts.post("delivering"))  # progress after a report is newer: it still counts
    assert posts.seen[-1] == "delivering"
    publisher.submit(posts.post("late"))  # within the interval: waits...
    publisher.close()  # ...and the job ends first
    publisher.submit(posts.post("after close"))
    time.sleep(0.6)
    assert "late" not in posts.seen and "after close" not in posts.seen


def test_a_failing_background_post_is_logged_and_later_updates_still_go_out(caplog):
    posts, publisher = Posts(), ProgressPublisher(interval_s=0.2)
    publisher.submit(posts.post("one"))

    def boom() -> None:
        raise RuntimeError("GitHub said 502")

    publisher.submit(boom)
    time.sleep(0.5)
    assert "GitHub said 502" in caplog.text
    publisher.submit(posts.post("three"))
    time.sleep(0.5)
    assert posts.seen == ["one", "three"]
