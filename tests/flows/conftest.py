"""Run the real flows with Metaflow's local runtime, in a throwaway Metaflow home, datastore and output root.

Metaflow reads its configuration when it is imported, so the variables are
set here, before any test module imports it (test modules import shared
code from ``helpers``, never from this file, so it runs once). The flows run
with the datastore folder as their working directory: that is where Metaflow
writes cards by default (``.metaflow/mf.cards`` next to the datastore), so
the Client finds them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_ROOT = Path(tempfile.mkdtemp(prefix="kg-flows-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
os.environ["METAFLOW_USER"] = "tester"
os.environ["METAFLOW_HOME"] = str(_ROOT / "home")
os.environ["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = str(_ROOT / "mf")
for name in ("METAFLOW_CARD_LOCALROOT", "METAFLOW_PROFILE", "KG_PRODUCTION_GRAPH"):
    os.environ.pop(name, None)
(_ROOT / "mf").mkdir()

from tests.flows.helpers import SMALL, FlowEnv  # noqa: E402  (imports metaflow: after the configuration above)


@pytest.fixture(scope="session")
def flow_env() -> FlowEnv:
    return FlowEnv(root=_ROOT / "out", cwd=_ROOT / "mf")


@pytest.fixture(scope="session")
def production_match(flow_env: FlowEnv):
    """MatchFlow on the production branch: the sample, a model trained on another seed, 3 partitions."""
    with flow_env.runner("match_flow", production=True) as runner:
        done = runner.run(max_workers=3, **SMALL)
        assert done.status == "successful", done.stdout + done.stderr
        return done.run
