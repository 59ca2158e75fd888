"""Store-and-forward survives SIGKILL: a real gateway process killed 20 times under load.

See ``tests/_support/forward_crash.py`` for the actors and the oracle; ``python -m tests.soak_forward
--kills 1000`` runs the same campaign for longer.
"""

from __future__ import annotations

import pytest

from tests._support.forward_crash import BATCH, run_campaign

KILLS = 20


@pytest.mark.slow
def test_sigkill_under_load_loses_nothing_invents_nothing_and_keeps_order(tmp_path):
    report = run_campaign(tmp_path, KILLS, seed=20261126)
    assert report.problems == []
    assert report.kills == KILLS
    assert report.acknowledged > 100  # the campaign did real work
    assert report.upstream_unique == report.acknowledged  # exactly once after de-duplication
    # Re-sent after a kill: only what was in flight or acknowledged but not yet deleted -- at most
    # three batches of 40 per kill (one POST in flight, one delete running, one queued for delete).
    assert report.resent <= KILLS * 3 * BATCH
