import pytest
from sqlalchemy.exc import IntegrityError

from assay.errors import ConflictError
from assay.store.retry import Retry, retrying


def _lost() -> IntegrityError:
    return IntegrityError("INSERT", {}, Exception("unique"))


def test_a_lost_race_is_tried_again_until_it_is_won() -> None:
    outcomes: list[BaseException | str] = [_lost(), Retry(), "won"]

    def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert retrying(attempt, "no") == "won"
    assert outcomes == []


def test_every_attempt_lost_is_a_conflict_that_says_what() -> None:
    calls = 0

    def attempt() -> str:
        nonlocal calls
        calls += 1
        raise _lost()

    with pytest.raises(ConflictError, match=r"Too many commits to 'd'; retry\."):
        retrying(attempt, "Too many commits to 'd'; retry.", attempts=3)
    assert calls == 3


def test_work_the_winner_did_settles_the_race() -> None:
    def attempt() -> str:
        raise _lost()

    assert retrying(attempt, "no", settled=lambda: "the winner's") == "the winner's"


def test_other_errors_are_not_retried() -> None:
    calls = 0

    def attempt() -> str:
        nonlocal calls
        calls += 1
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        retrying(attempt, "no")
    assert calls == 1
