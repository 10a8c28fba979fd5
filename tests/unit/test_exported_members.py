"""The public API is exactly what dispatcher.__all__ lists, sorted, every name importable."""

import dispatcher


def test_all_is_sorted_and_every_name_exists() -> None:
    assert dispatcher.__all__ == sorted(dispatcher.__all__)
    for name in dispatcher.__all__:
        assert getattr(dispatcher, name) is not None


def test_the_producer_api_is_public() -> None:
    assert {"Dispatcher", "JobHandle", "JobStatus", "ValidationError", "DispatchError"} <= set(dispatcher.__all__)
