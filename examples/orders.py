"""Order fulfilment in three steps: reserve stock, charge the card, ship.

A failed charge releases the reservation (a compensation), so no stock stays held.

    python -m examples.orders
"""

from __future__ import annotations

import dataclasses

import dolmen


@dataclasses.dataclass
class Order:
    order_id: str
    item: str
    quantity: int
    card: str


@dataclasses.dataclass
class Receipt:
    order_id: str
    reservation: str
    charge: str
    tracking: str


@dolmen.activity(retries=3, timeout=10.0)
def reserve_stock(order: Order) -> str:
    # A real service would receive the idempotency key so a retried call reserves once.
    return f"res-{dolmen.activity_info().idempotency_key}"


@dolmen.activity(retries=3, timeout=10.0)
def release_stock(reservation: str) -> None:
    return None


@dolmen.activity(retries=0, timeout=10.0)
def charge_card(order: Order) -> str:
    if order.card.startswith("0000"):
        raise ValueError(f"card {order.card} declined")
    return f"ch-{order.order_id}-{order.quantity * 25}"


@dolmen.activity(retries=3, timeout=10.0)
def ship(order: Order, charge: str) -> str:
    return f"track-{order.order_id}"


@dolmen.workflow
async def fulfil(order: Order) -> Receipt:
    reservation = await reserve_stock(order)
    try:
        charge = await charge_card(order)
    except dolmen.ActivityError:
        await release_stock(reservation)
        raise
    tracking = await ship(order, charge)
    return Receipt(order.order_id, reservation, charge, tracking)


def main() -> None:
    client = dolmen.connect()
    print(client.run(fulfil, Order("A-1", "tea", 2, "4242-4242"), id="order-A-1"))
    try:
        client.run(fulfil, Order("A-2", "tea", 1, "0000-0000"), id="order-A-2")
    except dolmen.WorkflowFailedError as exc:
        print(f"order A-2: {exc}")


if __name__ == "__main__":
    main()
