"""Webhooks (#17): deliveries per second to a loopback receiver, in process over moto.

EVENTS audit records go through the fan-out Lambda (batches of 100, one endpoint subscribed),
then the delivery queue (moto's SQS) is drained through the delivery Lambda, 10 messages a batch
as the event source mapping hands them over, each delivery signed and POSTed to an HTTP receiver
on 127.0.0.1 answering 204. Figures: events per second through the fan-out, deliveries per
second end to end (moto, SQS and the receiver included: one Lambda's share, deployed concurrency
multiplies it), and the exact DynamoDB calls per event and per delivery.
"""

from __future__ import annotations

import time

from bench.report import Figure

EVENTS = 200


def run() -> list[Figure]:
    from bench.calls import counting
    from bench.inprocess import moto_api
    from chalicelib import runtime
    from chalicelib.webhooks import queue
    from tests.streams import audit_record
    from tests.webhooks import drain, fan_out, make_event, receiving, register

    with moto_api() as anonymous, counting() as counter, receiving([204]) as receiver:
        alice = anonymous.sign_up("alice")
        queue.forget()
        queue.create_queue(runtime.settings())
        register(alice, receiver.url, ["contact.created"])
        records = [audit_record(make_event(alice.user["id"], alice.user["id"])) for _ in range(EVENTS)]
        counter.reset()
        started = time.perf_counter()
        for first in range(0, EVENTS, 100):
            assert fan_out(alice.client, *records[first : first + 100]) == {"batchItemFailures": []}
        fanned = time.perf_counter() - started
        fan_out_calls = len(counter.log) / EVENTS
        counter.reset()
        started = time.perf_counter()
        drain(alice.client, seconds=300)
        delivered = time.perf_counter() - started
        assert len(receiver.received) == EVENTS, len(receiver.received)
        delivery_calls = len(counter.log) / EVENTS
    return [
        Figure("webhooks", f"fan-out: {EVENTS} events to 1 subscribed endpoint, moto", EVENTS / fanned, "events/s",
               None),
        Figure("webhooks", "deliveries to a loopback receiver, one Lambda, end to end (moto's SQS)",
               EVENTS / delivered, "deliveries/s", None),
        Figure("webhooks", "fan-out: DynamoDB calls per event and endpoint (Query, conditional put)",
               fan_out_calls, "calls", 2, exact=True),
        Figure("webhooks", "delivery: DynamoDB calls per delivery (read, claim, endpoint, outcome)",
               delivery_calls, "calls", 4, exact=True),
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.report import print_table

    print_table(run())
