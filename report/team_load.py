"""Reading what the team page and reminder effectiveness need from the store."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from typing import Mapping

from sqlalchemy import Connection, func, select

from report.effectiveness import COME_BACK_WITHIN_S, MEASURED_RULES, Crossing
from report.figures import HISTORY_BEFORE_S, Period, Person, Sent
from report.load import Scope, load
from report.team import FollowUp, TeamFacts, TierMove
from scoring.events import EventKind
from scoring.followups import Action, State
from scoring.reminders import rules_for_change
from scoring.tiers import Cause, Tier
from store.db import in_chunks
from store.models import Customer, EventRow, OutboundMessageRow, Reminder, ReminderAction, TierChangeRow

customers, events, outbound = Customer.__table__, EventRow.__table__, OutboundMessageRow.__table__
tier_changes, reminders, actions = TierChangeRow.__table__, Reminder.__table__, ReminderAction.__table__
PEOPLE_ACTIONS = (Action.DONE.value, Action.SNOOZE.value, Action.TEMPLATE.value, Action.REASSIGN.value)
"""What a rep does about a follow-up (wapulse's own closings, replied and came_back, are not theirs)."""


def team_facts(connection: Connection, period: Period, now: int, rep_numbers: frozenset[str],
               answers_within_s: int) -> TeamFacts:
    """What the team page shows for the period; our messages up to `answers_within_s` past its end
    too, so that a question asked just before the end is judged by when it was answered."""
    activity = load(connection, [period], period.start - HISTORY_BEFORE_S, Scope(not_customers=rep_numbers))[0]
    people = {person.id: person for person in activity.people}
    activity.sent = [*activity.sent, *(Sent(customer, at) for customer, at in connection.execute(
        select(outbound.c.customer_id, outbound.c.at).where(outbound.c.at >= period.end,
                                                            outbound.c.at < period.end + answers_within_s))
        if customer in people)]
    history: dict[int, list[tuple[int, str]]] = defaultdict(list)
    moves = []
    for customer, from_tier, to_tier, at in connection.execute(
            select(tier_changes.c.customer_id, tier_changes.c.from_tier, tier_changes.c.to_tier, tier_changes.c.at)
            .where(tier_changes.c.at < period.end).order_by(tier_changes.c.at, tier_changes.c.id)):
        if customer in people:
            history[customer].append((at, to_tier))
            if at >= period.start:
                moves.append(TierMove(customer, from_tier, to_tier, at))
    tiers_now = {cid: tier for cid, tier in connection.execute(select(customers.c.id, customers.c.tier)) if cid in people}
    return TeamFacts(activity, tiers_now, moves, history, _followups(connection, period, people),
                     crossings(connection, period, people))


def _followups(connection: Connection, period: Period, people: Mapping[int, Person]) -> list[FollowUp]:
    """Follow-ups open now or made in the period (held-back ones were never anyone's to act on)."""
    rows = connection.execute(
        select(reminders.c.id, reminders.c.rep, reminders.c.customer_id, reminders.c.created_at, reminders.c.state)
        .where((reminders.c.state == State.OPEN.value)
               | ((reminders.c.created_at >= period.start) & (reminders.c.created_at < period.end)),
               reminders.c.close_reason.is_distinct_from(Action.HELD_BACK.value))).all()
    first_action = _first_actions(connection, [row.id for row in rows])
    return [FollowUp(row.id, row.rep, row.customer_id, row.created_at, first_action.get((row.id, row.rep)),
                     row.state == State.OPEN.value)
            for row in rows if row.customer_id in people]


def _first_actions(connection: Connection, reminder_ids: list[str]) -> dict[tuple[str, str], int]:
    """(reminder, rep) -> when that rep first did something about it (a manager acting on a rep's
    follow-up, reassigning it say, is not the rep acting)."""
    found = {}
    for chunk in in_chunks(reminder_ids):
        found.update({(reminder, rep): at for reminder, rep, at in connection.execute(
            select(actions.c.reminder_id, actions.c.rep, func.min(actions.c.at))
            .where(actions.c.reminder_id.in_(chunk), actions.c.actor == actions.c.rep, actions.c.action.in_(PEOPLE_ACTIONS))
            .group_by(actions.c.reminder_id, actions.c.rep))})
    return found


def crossings(connection: Connection, period: Period, people: Mapping[int, Person]) -> list[Crossing]:
    """The went_cold and cooling crossings of these people in the period, each with its reminder,
    what its rep did and the messages both ways in the 30 days after."""
    found = []
    for customer, from_tier, to_tier, at, cause in connection.execute(
            select(tier_changes.c.customer_id, tier_changes.c.from_tier, tier_changes.c.to_tier, tier_changes.c.at,
                   tier_changes.c.cause)
            .where(tier_changes.c.at >= period.start, tier_changes.c.at < period.end,
                   tier_changes.c.to_tier.in_([Tier.COLD.value, Tier.WARM.value]))):
        if customer in people:
            found += [(customer, rule.value, at) for rule in rules_for_change(
                Tier(from_tier) if from_tier else None, Tier(to_tier), Cause(cause)) if rule.value in MEASURED_RULES]
    if not found:
        return []
    owed = defaultdict(list)
    for row in connection.execute(select(reminders.c.id, reminders.c.rep, reminders.c.customer_id, reminders.c.rule,
                                         reminders.c.at, reminders.c.close_reason)
                                  .where(reminders.c.at >= period.start, reminders.c.at < period.end,
                                         reminders.c.rule.in_(MEASURED_RULES))):
        owed[(row.customer_id, row.rule, row.at)].append(row)
    done, snoozed = _done_and_snoozed(connection, sorted({row.id for rows in owed.values() for row in rows}))
    involved = sorted({customer for customer, _, _ in found})
    theirs = _instants(connection, involved, period, events.c.customer_id, events.c.at,
                       events.c.kind == EventKind.MESSAGE.value)
    ours = _instants(connection, involved, period, outbound.c.customer_id, outbound.c.at)
    result = []
    for customer, rule, at in found:
        rows = owed.get((customer, rule, at), [])
        owner = people[customer].owner
        mine = [row for row in rows if row.rep == owner] or rows
        ids = {row.id for row in rows}
        result.append(Crossing(
            customer, rule, at, mine[0].rep if mine else owner,
            reminded=bool(rows) and not any(row.close_reason == Action.HELD_BACK.value for row in rows),
            held_back=any(row.close_reason == Action.HELD_BACK.value for row in rows),
            done_at=min((done[i] for i in ids if i in done), default=None),
            snoozed_until=max((snoozed[i] for i in ids if i in snoozed), default=None),
            first_ours_after=_first_after(ours.get(customer, []), at),
            first_theirs_after=_first_after(theirs.get(customer, []), at),
        ))
    return result


def _done_and_snoozed(connection: Connection, reminder_ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Per reminder, when a person first marked it Done, and the end of its last snooze."""
    done, snoozed = {}, {}
    for chunk in in_chunks(reminder_ids):
        for reminder, action, at, detail in connection.execute(
                select(actions.c.reminder_id, actions.c.action, actions.c.at, actions.c.detail)
                .where(actions.c.reminder_id.in_(chunk), actions.c.actor.is_not(None),
                       actions.c.action.in_([Action.DONE.value, Action.SNOOZE.value])).order_by(actions.c.at)):
            if action == Action.DONE.value:
                done.setdefault(reminder, at)
            else:
                snoozed[reminder] = detail.get("until", at)
    return done, snoozed


def _instants(connection: Connection, customer_ids: list[int], period: Period, customer_column, at_column,
              *conditions) -> dict[int, list[int]]:
    """Per customer, the sorted instants of their rows from the period's start to 30 days past its end."""
    found: dict[int, list[int]] = defaultdict(list)
    for chunk in in_chunks(customer_ids):
        for customer, at in connection.execute(
                select(customer_column, at_column).where(customer_column.in_(chunk),
                                                         at_column >= period.start,
                                                         at_column <= period.end + COME_BACK_WITHIN_S, *conditions)):
            found[customer].append(at)
    for instants in found.values():
        instants.sort()
    return found


def _first_after(instants: list[int], at: int) -> int | None:
    index = bisect_right(instants, at)
    return instants[index] if index < len(instants) else None

