"""The coalescing publisher: many small submits, few publishes, every item exactly once."""
import threading
import time

from notifier.batching import CoalescingPublisher


def test_concurrent_submits_share_one_publish_and_every_caller_is_released():
    calls = []
    publisher = CoalescingPublisher(calls.append, window=0.2)
    barrier = threading.Barrier(10)
    confirmed = []

    def request(i):
        barrier.wait()
        confirmed.append(publisher.submit([(f"id{i}", "normal")], wait=5))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert confirmed == [True] * 10
    assert sorted(i for call in calls for i, _ in call) == sorted(f"id{i}" for i in range(10))
    assert len(calls) < 10


def test_a_full_chunk_is_published_without_waiting_for_the_window():
    calls = []
    publisher = CoalescingPublisher(calls.append, window=30, max_items=3)

    assert publisher.submit([("a", "low"), ("b", "low"), ("c", "low")], wait=5) is True
    assert calls == [[("a", "low"), ("b", "low"), ("c", "low")]]


def test_a_failing_publish_releases_the_waiters_and_the_next_submit_still_works():
    calls = []

    def publish(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("broker down")

    publisher = CoalescingPublisher(publish, window=0.001)

    assert publisher.submit([("x", "high")], wait=5) is True
    assert publisher.submit([("y", "high")], wait=5) is True
    assert calls == [[("x", "high")], [("y", "high")]]


def test_a_submit_that_does_not_wait_returns_at_once_and_drain_waits_for_its_publish():
    release = threading.Event()
    calls = []

    def publish(items):
        release.wait(5)  # a broker slow to confirm
        calls.append(items)

    publisher = CoalescingPublisher(publish, window=0)

    assert publisher.submit([("a", "normal")]) is False  # queued, not yet confirmed
    assert publisher.drain(timeout=0.2) is False and calls == []
    publisher.submit([("b", "normal")])  # arrives while "a" is being published: goes in the next message
    release.set()
    assert publisher.drain(timeout=5) is True
    assert calls == [[("a", "normal")], [("b", "normal")]]


def test_drain_with_nothing_submitted_is_done_at_once():
    assert CoalescingPublisher(lambda items: None, window=0.5).drain(timeout=0) is True


def test_pending_keys_are_settled_once_their_items_are_safe_and_never_after_a_publish_that_lost_them():
    outcomes = iter([None, False])  # published; then neither published nor marked due
    settled, idle = [], []
    publisher = CoalescingPublisher(lambda items: next(outcomes), window=0, settle=settled.extend,
                                    on_idle=lambda: idle.append(True))

    assert publisher.submit([("a", "normal")], wait=5, pending=["key-a"]) is True
    assert publisher.submit([("b", "normal")], wait=5, pending=["key-b"]) is True
    assert publisher.drain(timeout=5)
    assert settled == ["key-a"]  # key-b's rows wait for the dispatcher's recovery
    assert idle  # drained: the thread let go of its connection

    publisher.submit([], pending=["key-c"])  # published elsewhere (a full batch): only its key to settle
    assert publisher.drain(timeout=5)
    assert settled == ["key-a", "key-c"]


def test_an_idle_publisher_thread_runs_on_idle_once():
    idle = threading.Event()
    publisher = CoalescingPublisher(lambda items: None, window=0, on_idle=idle.set, idle_after=0.05)

    publisher.submit([("a", "normal")], wait=5)
    assert idle.wait(5)


def test_the_keys_of_several_flushes_are_settled_in_one_call_once_settle_every_has_passed():
    settled = []
    publisher = CoalescingPublisher(lambda items: None, window=0, settle=lambda keys: settled.append(list(keys)),
                                    settle_every=1.0)
    for key in ("k1", "k2", "k3"):
        assert publisher.submit([(key, "normal")], wait=5, pending=[key])
    assert settled == []  # published, their keys wait for the next settle
    deadline = time.monotonic() + 5
    while not settled and time.monotonic() < deadline:
        time.sleep(0.02)
    assert settled == [["k1", "k2", "k3"]]


def test_drain_settles_the_keys_still_waiting():
    settled = []
    publisher = CoalescingPublisher(lambda items: None, window=0, settle=settled.extend, settle_every=60)
    publisher.submit([("a", "normal")], wait=5, pending=["key-a"])
    assert publisher.drain(timeout=5)
    assert settled == ["key-a"]


def test_a_flush_nobody_waits_for_keeps_the_lazy_window_and_a_waiting_caller_cuts_it_short():
    published = []
    publisher = CoalescingPublisher(lambda items: published.append((time.monotonic(), list(items))), window=0.0,
                                    lazy_window=1.0)
    started = time.monotonic()
    publisher.submit([("a", "normal")])  # the group committer's: nobody waits
    time.sleep(0.1)
    assert published == []  # still gathering
    assert publisher.submit([("b", "normal")], wait=5)
    assert [items for _, items in published] == [[("a", "normal"), ("b", "normal")]]
    assert published[0][0] - started < 0.8
    publisher.submit([("c", "normal")])
    assert publisher.drain(timeout=5)
    assert [items for _, items in published][1] == [("c", "normal")]


def test_the_lazy_window_holds_a_stream_of_items_but_not_a_trickle():
    published = []
    publisher = CoalescingPublisher(lambda items: published.append(list(items)), window=0.0, lazy_window=0.3,
                                    lazy_min_rate=20.0)  # lazy while 20 items/s or more arrive
    publisher.submit([("lone", "normal")])  # nothing came before: published at once
    deadline = time.monotonic() + 0.2
    while not published and time.monotonic() < deadline:
        time.sleep(0.005)
    assert published == [[("lone", "normal")]]

    for i in range(200):  # a stream: 2,000 items/s
        publisher.submit([(f"s{i}", "normal")])
        time.sleep(0.0005)
    assert publisher.drain(timeout=5)
    stream = published[1:]
    assert sorted(i for call in stream for i, _ in call) == sorted(f"s{i}" for i in range(200))
    assert len(stream) <= 5, f"the stream was gathered into a few messages, not {len(stream)}"
