"""A project that configures nothing gets no warnings about trainkit's own defaults."""

from __future__ import annotations

import logging
import warnings

from trainkit.scaffold import init_project
from trainkit.training import prepare


def test_the_default_config_compiles_without_warnings(tmp_path, caplog):
    project = init_project(tmp_path / "bot")
    (project / "config.yml").write_text("language: en\n")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        plan = prepare(project / "domain.yml", project / "config.yml", [project / "data"],
                       output=tmp_path / "models", project_dir=project)
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any(node.component == "TEDPolicy" for node in plan.recipe.nodes)
