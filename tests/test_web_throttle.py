"""The web server's in-memory limits: wrong passwords per address and per name, refusal counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from facility.web.digest import Digest
from facility.web.throttle import LOCKOUT, MAX_FAILURES, LoginThrottle

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ADDRESSES = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1"])
NAMES = st.sampled_from(["rita", "RITA ", "sam", "nobody"])


@given(
    st.lists(
        st.tuples(ADDRESSES, NAMES, st.integers(min_value=0, max_value=3600)),
        max_size=200,
    )
)
def test_failures_elsewhere_never_hold_back_a_clean_address(failures):
    throttle = LoginThrottle(per_minute=10)
    for address, name, second in sorted(failures, key=lambda f: f[2]):
        throttle.failed(address, name, T0 + timedelta(seconds=second))
    # The real user's desk made no mistakes: nothing anyone else did can keep her out.
    for second in (0, 1800, 3600, 7200):
        assert throttle.check("192.0.2.10", "rita", T0 + timedelta(seconds=second)) is None


def test_five_in_a_row_lock_the_name_at_that_address_only():
    throttle = LoginThrottle(per_minute=100)
    for n in range(MAX_FAILURES - 1):
        assert throttle.failed("10.0.0.1", "rita", T0 + timedelta(seconds=n)) is None
    until = throttle.failed("10.0.0.1", "Rita", T0 + timedelta(seconds=5))
    assert until == T0 + timedelta(seconds=5) + LOCKOUT
    assert throttle.check("10.0.0.1", " rita", T0 + timedelta(minutes=1)).reason == "locked"
    assert throttle.check("10.0.0.2", "rita", T0 + timedelta(minutes=1)) is None
    assert throttle.check("10.0.0.1", "sam", T0 + timedelta(minutes=1)) is None
    assert throttle.check("10.0.0.1", "rita", until) is None
    # A right password starts the streak over.
    for n in range(MAX_FAILURES - 1):
        throttle.failed("10.0.0.3", "rita", T0 + timedelta(seconds=n))
    throttle.succeeded("10.0.0.3", "rita")
    assert throttle.failed("10.0.0.3", "rita", T0 + timedelta(seconds=9)) is None


def test_an_address_gets_its_minute_of_failures_then_waits():
    throttle = LoginThrottle(per_minute=3)
    for n in range(3):
        throttle.failed("10.0.0.1", f"name{n}", T0 + timedelta(seconds=10 * n))
    held = throttle.check("10.0.0.1", "rita", T0 + timedelta(seconds=30))
    assert held.reason == "address" and held.until == T0 + timedelta(minutes=1)
    assert throttle.check("10.0.0.1", "rita", T0 + timedelta(seconds=61)) is None


def test_memory_stays_bounded():
    throttle = LoginThrottle(per_minute=10, capacity=100)
    for n in range(1000):
        throttle.failed(f"10.0.{n // 250}.{n % 250}", f"guess{n}", T0)
    assert len(throttle._addresses) <= 100 and len(throttle._streaks) <= 100


@given(st.lists(st.integers(min_value=0, max_value=600), min_size=1, max_size=300))
def test_every_refusal_is_either_audited_or_counted_once(seconds):
    digest = Digest(window=timedelta(minutes=1))
    audited = counted = 0
    for second in sorted(seconds):
        now = T0 + timedelta(seconds=second)
        audited += digest.note(("web:rita", "refused", "GET /api/holds/{case:path}"), now)
        counted += sum(r.count for r in digest.due(now))
    counted += sum(r.count for r in digest.drain())
    assert audited + counted == len(seconds)
    # At most one entry a window, plus one count a window.
    assert audited <= (max(seconds) - min(seconds)) // 60 + 1
