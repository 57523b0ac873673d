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


def test_a_uuid7_millisecond_range_holds_every_id_of_one_uuid7_many_call_and_no_other_millisecond():
    from notifier.ids import uuid7_before, uuid7_millisecond_range

    ids = uuid7_many(200)
    low, high = uuid7_millisecond_range(ids[0])
    assert all(low <= i <= high for i in ids)
    ms = ids[0].int >> 80
    assert uuid7_before((ms + 1.5) / 1000) > high and uuid7_before((ms + 0.5) / 1000) == low
    assert uuid7_before(time.time() - 5) < uuid7()
