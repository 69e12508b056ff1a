"""Work that one replica does for all of them, and each replica's presence, on leases in the store
(`store.coordination`): the sentiment monitor, retention, topic assignment and recovering the answers of a replica
that died run on whichever replica holds their lease; when it stops renewing (killed, cut off, stalled), another
replica takes the work over within `LEASE_TTL_S`. With SQLite (one server) the same code simply always wins."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

LEASE_TTL_S = 30.0  # a holder renews every third of this; a dead one's work moves on after at most this long
PRESENCE = "replica:"  # + the replica's name (`replica_name`): held while the replica runs


async def hold_presence(coordination, replica: str, ttl_s: float = LEASE_TTL_S) -> None:
    """Keep `replica:<name>` renewed while this replica runs, released when it stops (its streaming answers are
    recovered by the others once it lapses)."""
    name = PRESENCE + replica
    try:
        while True:
            try:
                await asyncio.to_thread(coordination.acquire, name, replica, ttl_s)
            except Exception:
                log.exception("could not renew this replica's presence")
            await asyncio.sleep(ttl_s / 3)
    finally:
        await _release(coordination, name, replica)


async def run_claimed(coordination, name: str, replica: str, work: Callable[[], Awaitable[None]],
                      ttl_s: float = LEASE_TTL_S) -> None:
    """Run `work()` only while this replica holds lease `name`: wait for it, start the work, renew; cancel the
    work the moment a renewal fails (another replica may have it now) and wait again. Runs until cancelled."""
    while True:
        try:
            term = await asyncio.to_thread(coordination.acquire, name, replica, ttl_s)
        except Exception:
            log.exception("could not ask for the lease on %s", name)
            term = None
        if term is None:
            await asyncio.sleep(ttl_s / 3)
            continue
        log.info("this replica (%s) now runs %s (term %d)", replica, name, term)
        task = asyncio.create_task(work(), name=name)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=ttl_s / 3)
                if task.done():
                    break
                try:
                    held = await asyncio.to_thread(coordination.acquire, name, replica, ttl_s) is not None
                except Exception:
                    log.exception("could not renew the lease on %s", name)
                    held = False
                if not held:
                    log.warning("lost the lease on %s: stopping it here", name)
                    break
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await _release(coordination, name, replica)
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("%s stopped: %r; retried", name, task.exception())
        await asyncio.sleep(ttl_s / 3)  # a work that ended or failed is asked for again, by whichever replica


async def _release(coordination, name: str, replica: str) -> None:
    try:
        await asyncio.shield(asyncio.to_thread(coordination.release, name, replica))
    except Exception:  # it lapses by itself
        log.warning("could not release %s; it lapses by itself", name)


async def recover_lapsed_replicas(store, interval_s: float = LEASE_TTL_S / 3) -> None:
    """Answers a dead replica left `streaming` become `partial` once its presence lapses (and the rate-limit
    buckets nobody used for an hour are dropped). Runs until cancelled."""
    def once() -> int:
        writers = store.conversations.streaming_writers()
        lapsed = store.coordination.expired([PRESENCE + w for w in writers])
        store.coordination.forget_full_buckets()
        if not lapsed:
            return 0
        return store.conversations.recover_interrupted(dead_writers={n.removeprefix(PRESENCE) for n in lapsed})

    while True:
        try:
            recovered = await asyncio.to_thread(once)
            if recovered:
                log.warning("%d answers of a replica that stopped were marked partial", recovered)
        except Exception:
            log.exception("could not recover the answers of stopped replicas")
        await asyncio.sleep(interval_s)


async def exclusively(coordination, name: str, replica: str, fn: Callable[[], object],
                      ttl_s: float = LEASE_TTL_S) -> object:
    """Run blocking `fn` (in a thread) once this replica holds lease `name`, renewing it meanwhile: for work on
    shared files that two replicas must not do at once (building the knowledge base index on a shared home)."""
    while await asyncio.to_thread(coordination.acquire, name, replica, ttl_s) is None:
        await asyncio.sleep(min(1.0, ttl_s / 3))
    work = asyncio.ensure_future(asyncio.to_thread(fn))
    try:
        while not work.done():
            await asyncio.wait({work}, timeout=ttl_s / 3)
            if not work.done():
                await asyncio.to_thread(coordination.acquire, name, replica, ttl_s)
        return work.result()
    finally:
        await _release(coordination, name, replica)
