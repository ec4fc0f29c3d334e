"""Litestar's RedisStore (renew-on-access EVALSHA script, delete_all script with SCAN + UNLINK)
against a three-region sessionmesh demo, database 2."""
import asyncio
import time
from redis.asyncio import Redis
from litestar.stores.redis import RedisStore


async def until(what, f, deadline=5.0):
    start = time.time()
    while time.time() - start < deadline:
        if await f():
            return
        await asyncio.sleep(0.02)
    raise SystemExit(f"FAILED: {what}")


async def main():
    stores = [RedisStore(Redis.from_url(f"redis://127.0.0.1:{6400 + i}/2")) for i in (1, 2, 3)]
    a, b, c = stores
    await a.set("sess", b"payload", expires_in=5)
    await until("sess in region 2", lambda: _eq(b.get("sess"), b"payload"))
    # get with renew_for runs the renew script (EVALSHA, EVAL after NOSCRIPT) in region 2.
    assert await b.get("sess", renew_for=600) == b"payload"
    await until("renewed TTL seen in region 3", lambda: _gt(c.expires_in("sess"), 100))
    await c.set("other", b"x")
    await until("other in region 1", lambda: _eq(a.get("other"), b"x"))
    await c.delete_all()
    await until("delete_all in region 3 empties region 1",
                lambda: _both_none(a.get("sess"), a.get("other")))
    print("litestar: set, renew-on-access script, expires_in, delete_all across regions: OK")


async def _eq(aw, want):
    return (await aw) == want


async def _gt(aw, n):
    v = await aw
    return v is not None and v > n


async def _both_none(x, y):
    a, b = await x, await y
    return a is None and b is None


asyncio.run(main())
