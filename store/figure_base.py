"""The base customers are ranked against (the sorted values RFM quintiles need, the value model
fitted over everyone) and the sort keys the desk orders customers by, kept in the store by
workers.figures: working the base out reads every customer, which a page must never do."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Sequence

from sqlalchemy import Connection, bindparam, or_, select, update

from scoring import figures
from scoring.customer import CustomerState
from scoring.value import BgNbd
from store.models import Customer, FigureBase

customers, kept = Customer.__table__, FigureBase.__table__
RFM, MODEL = "rfm", "model"


@dataclass(frozen=True)
class Base:
    """What figures rank a customer against, as of `now`: RFM quintiles and the value model."""

    now: int
    rules: figures.FigureRules
    rfm: figures.RfmBase
    model: BgNbd | None

    @classmethod
    def of(cls, states: Sequence[CustomerState], now: int, rules: figures.FigureRules) -> Base:
        return cls(now, rules, figures.RfmBase.of(states, now, rules), figures.fit_value_model(states, now))

    @classmethod
    def load(cls, connection: Connection, now: int, rules: figures.FigureRules) -> Base:
        """The base worked out from every customer's state: seconds at 100,000 customers. Pages
        read the one workers.figures keeps (store.figure_base) instead. Read in key order: the
        value model's fit stops within a tolerance, so the same customers must come in the same
        order, however their rows were numbered."""
        states = [CustomerState.from_json(state)
                  for (state,) in connection.execute(select(customers.c.state).order_by(customers.c.key))]
        return cls.of(states, now, rules)

    def at(self, now: int) -> Base:
        """The same base, ranking customers as of `now` (a kept base is a few minutes old)."""
        return replace(self, now=now)

    def figures(self, state: CustomerState, unreachable: bool) -> dict:
        return {
            "rfm": figures.rfm(state, self.now, self.rfm, self.rules),
            "lifecycle": figures.lifecycle(state, self.now),
            "churn_risk": figures.churn_risk(state, self.now, unreachable),
            "intent": figures.intent(state, self.now),
            "frequency_band": figures.frequency_band(state, self.now, self.rules),
            "value": figures.value(state, self.now, self.model),
        }


def current_base(connection: Connection, now: int, rules: figures.FigureRules) -> Base:
    """The kept base, ranking as of `now`; worked out here only before workers.figures first ran."""
    kept_base = load_base(connection, rules)
    return kept_base.at(now) if kept_base is not None else Base.load(connection, now, rules)


def save_base(connection: Connection, base: Base) -> None:
    model = {name: float(value) if isinstance(value, float) else int(value) for name, value in asdict(base.model).items()} \
        if base.model else {}
    records = {RFM: figures.rfm_base_to_record(base.rfm), MODEL: model}
    for name, data in records.items():
        row = {"computed_at": base.now, "data": data}
        if connection.execute(update(kept).where(kept.c.name == name).values(row)).rowcount == 0:
            connection.execute(kept.insert().values(name=name, **row))


def base_computed_at(connection: Connection) -> int | None:
    return connection.execute(select(kept.c.computed_at).where(kept.c.name == RFM)).scalar()


def load_base(connection: Connection, rules: figures.FigureRules) -> Base | None:
    """The kept base, or None before workers.figures first worked one out."""
    rows = {row.name: row for row in connection.execute(select(kept))}
    if RFM not in rows:
        return None
    model = rows.get(MODEL)
    return Base(rows[RFM].computed_at, rules, figures.rfm_base_from_record(rows[RFM].data),
                BgNbd(**model.data) if model is not None and model.data else None)


def load_model(connection: Connection) -> BgNbd | None:
    data = connection.execute(select(kept.c.data).where(kept.c.name == MODEL)).scalar()
    return BgNbd(**data) if data else None


def stale(connection: Connection, now: int, older_than_s: int, limit: int) -> list:
    """Customers whose sort keys are missing (written since) or older than `older_than_s`."""
    return connection.execute(
        select(customers.c.id, customers.c.state, customers.c.unreachable)
        .where(or_(customers.c.figures_at.is_(None), customers.c.figures_at < now - older_than_s))
        .order_by(customers.c.figures_at.nulls_first(), customers.c.id).limit(limit)
    ).all()


def set_sort_keys(connection: Connection, keys: dict[int, dict]) -> None:
    """Each customer's sort keys (scoring.figures.sort_keys), in one statement."""
    if keys:
        connection.execute(
            update(customers).where(customers.c.id == bindparam("customer_id"))
            .values({name: bindparam(name) for name in next(iter(keys.values()))}),
            [{"customer_id": customer_id, **values} for customer_id, values in keys.items()],
        )
