"""Waiting for a condition, with a timeout, instead of sleeping for a fixed time: the one polling
loop of the tests and the benches. Standard library only."""

import time


def wait_for(predicate, timeout, what, every=0.05):
    """Calls `predicate()` until it returns a truthy value, and returns that value.

    Raises AssertionError naming `what` (a phrase: "tensorboard to list run 'alpha'") if it has
    not after `timeout` seconds; `what` may also be a function of no argument, called then, to
    say what was last seen. Exceptions from `predicate` propagate."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what() if callable(what) else what}")
        time.sleep(every)
