"""A webhook batch opening many conversations of a campaign hands out once after its commit (issue
10), not once per conversation; a hand-out planned in a savepoint that rolled back is planned again."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from conversa.inbox.actions import assignment


class Boom(Exception):
    pass


def _planned() -> list[tuple[int | None, int | None]]:
    return [(f.campaign_id, f.agent_id) for _sids, f, _robust in connection.run_on_commit
            if isinstance(f, assignment._HandOut)]


def test_one_hand_out_per_campaign_and_transaction(demo):
    with transaction.atomic():
        for _ in range(3):
            assignment.hand_out_on_commit(campaign_id=1)
        assignment.hand_out_on_commit(campaign_id=2)
        assignment.hand_out_on_commit(agent_id=7)
        assignment.hand_out_on_commit(agent_id=7)
        assert _planned() == [(1, None), (2, None), (None, 7)]
    with transaction.atomic():  # the next transaction plans its own
        assignment.hand_out_on_commit(campaign_id=1)
        assert _planned() == [(1, None)]


def test_a_hand_out_dropped_with_its_savepoint_is_planned_again(demo):
    with transaction.atomic():
        with pytest.raises(Boom), transaction.atomic():
            assignment.hand_out_on_commit(campaign_id=1)
            raise Boom
        assert _planned() == []
        assignment.hand_out_on_commit(campaign_id=1)
        assert _planned() == [(1, None)]
