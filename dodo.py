"""trainkit's own build tasks, and the example of training with doit.

`doit train` trains the bundled example assistant (paths are set in pyproject.toml under
[tool.doit.tasks.train]); in your own project the whole dodo.py is the import below.
"""

from trainkit.tasks import *  # noqa: F401,F403
