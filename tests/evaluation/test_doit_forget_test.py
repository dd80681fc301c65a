"""`doit forget test` makes the next `doit test` run the tests again, though the model
and the test files did not change."""

from __future__ import annotations

import test_doit_test_task as base

project = base.project


def test_doit_forget_test_makes_the_next_doit_test_run(project):
    base.doit(project, "train", "test", "--nlu", "tests")
    assert "-- test" in base.doit(project, "test", "--nlu", "tests").stdout
    forgot = base.doit(project, "forget", "test")
    assert "forgetting test" in forgot.stdout
    again = base.doit(project, "test", "--nlu", "tests")
    assert ".  test" in again.stdout and "Intent evaluation (2 examples):" in again.stdout
    assert "-- test" in base.doit(project, "test", "--nlu", "tests").stdout
