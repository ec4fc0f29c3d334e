"""Django's own Redis cache (django.core.cache.backends.redis.RedisCache, redis-py) and its
cache-backed sessions against a three-region sessionmesh demo, database 1, as a user would."""
import time
import django
from django.conf import settings

settings.configure(
    CACHES={
        f"r{i}": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{6400 + i}/1",
        }
        for i in (1, 2, 3)
    }
    | {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                   "LOCATION": "redis://127.0.0.1:6401/1"}},
    SESSION_ENGINE="django.contrib.sessions.backends.cache",
    INSTALLED_APPS=["django.contrib.sessions"],
    SECRET_KEY="x",
)
django.setup()
from django.core.cache import caches
from django.contrib.sessions.backends.cache import SessionStore


def until(what, f, deadline=5.0):
    start = time.time()
    while time.time() - start < deadline:
        if f():
            return
        time.sleep(0.02)
    raise SystemExit(f"FAILED: {what}")


r1, r2, r3 = caches["r1"], caches["r2"], caches["r3"]
r1.clear()
r1.set("hits", 10)
until("hits in r2", lambda: r2.get("hits") == 10)
r2.incr("hits", 5)
r3.incr("hits")
until("16 everywhere", lambda: all(c.get("hits") == 16 for c in (r1, r2, r3)))
r1.set("other", {"a": 1}, timeout=300)
until("other in r3", lambda: r3.get("other") == {"a": 1})

s = SessionStore()
s["user"] = "ann"
s.save()
key = s.session_key
until("session in r3", lambda: caches["r3"].get("django.contrib.sessions.cache" + key) is not None)

r3.clear()  # FLUSHDB in database 1 of one region
until("clear in r3 empties r1 and r2", lambda: r1.get("hits") is None and r2.get("other") is None)
until("session gone", lambda: SessionStore(session_key=key).load() == {})
print("django: set/incr across regions, cache sessions, clear() in one region empties all: OK")
