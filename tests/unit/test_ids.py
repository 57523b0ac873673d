import time

from notifier.ids import uuid7, uuid7_many


def test_uuid7_many_gives_distinct_version_7_ids_of_the_current_millisecond():
    before = time.time_ns() // 1_000_000
    ids = uuid7_many(1000)
    after = time.time_ns() // 1_000_000

    assert len(set(ids)) == 1000
    assert all(i.version == 7 and i.variant == "specified in RFC 4122" for i in ids)
    assert all(before <= i.int >> 80 <= after for i in ids)


def test_uuid7_many_ids_sort_after_earlier_uuid7_ids():
    earlier = uuid7()
    time.sleep(0.002)

    assert all(i > earlier for i in uuid7_many(10))
