"""A stand-alone proxy-like process for the multi-process store tests.

``python -m tests.store.worker allocate URL ORG FIRST LAST SEED``
    allocate ids for GUIDs number FIRST..LAST-1 (shuffled with SEED, in batches), print
    ``<guid> <id>`` for each once the call returned, then ``done``.
``python -m tests.store.worker burst URL ORG``
    until killed: claim an idempotency key, allocate a receipt id, save a receipt, complete the key,
    and only then print ``<reference> <guid> <id>`` (four submissions in flight at any time).
"""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from datetime import UTC, datetime

from proxy.store import RECEIPT_KIND, IdempotencyKey, Receipt, ReceiptReference, ReceiptStatus, open_store

BATCH = 50
BURST_CONCURRENCY = 4
OPERATION = "SubmitFormTaskBasic"
CALLER = "burst-worker"


def numbered_guid(number: int) -> str:
    """The GUID the parent and the workers agree on for ``number``."""
    return str(uuid.UUID(int=(0xA17 << 100) + number))


def acknowledge(*fields: object) -> None:
    sys.stdout.write(" ".join(str(field) for field in fields) + "\n")
    sys.stdout.flush()


async def allocate(url: str, org: str, first: int, last: int, seed: int) -> None:
    numbers = list(range(first, last))
    random.Random(seed).shuffle(numbers)
    store = await open_store(url)
    try:
        for start in range(0, len(numbers), BATCH):
            guids = [numbered_guid(number) for number in numbers[start : start + BATCH]]
            ids = await store.allocate_ids("correspondence", guids, org)
            sys.stdout.write("".join(f"{guid} {ids[guid]}\n" for guid in guids))
            sys.stdout.flush()
        acknowledge("done")
    finally:
        await store.close()


async def burst(url: str, org: str) -> None:
    store = await open_store(url)

    async def submit_forever() -> None:
        while True:
            reference = f"ESR-{uuid.uuid4()}"
            key = IdempotencyKey(CALLER, OPERATION, reference)
            begun = await store.begin(key)
            assert begun.is_new
            guid = str(uuid.uuid4())
            receipt_id = await store.allocate_id(RECEIPT_KIND, guid, org)
            await store.save_receipt(
                Receipt(
                    receipt_id=receipt_id,
                    owner_org=org,
                    status=ReceiptStatus.OK,
                    text="Shipment received",
                    type_name="FormTask",
                    last_changed=datetime.now(UTC),
                    references=(ReceiptReference("ExternalShipmentReference", reference),),
                )
            )
            await store.complete(key, {"receipt_id": receipt_id})
            acknowledge(reference, guid, receipt_id)

    await asyncio.gather(*(submit_forever() for _ in range(BURST_CONCURRENCY)))


def main(argv: list[str]) -> None:
    command, url, org, *rest = argv
    if command == "allocate":
        first, last, seed = (int(value) for value in rest)
        asyncio.run(allocate(url, org, first, last, seed))
    elif command == "burst":
        asyncio.run(burst(url, org))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
