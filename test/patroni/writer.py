"""A writer for the Patroni tests: commits one small transaction after another
through the leader endpoint and prints one JSON line per outcome, so the test
knows exactly which transactions PostgreSQL acknowledged.

    python writer.py '<libpq dsn>' <pause seconds>

  {"ack": 17, "t": 1764680000.123}      committed (COMMIT returned)
  {"err": "...", "id": 18, "t": ...}    not acknowledged (may or may not be there)
Stops on SIGTERM or when stdin closes, after the transaction under way.
"""
import json
import signal
import sys
import threading
import time

import psycopg

dsn, pause = sys.argv[1], float(sys.argv[2])
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()


def say(**kw):
    kw["t"] = time.time()
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


conn = None
n = 0
while not stop.is_set():
    try:
        if conn is None:
            conn = psycopg.connect(dsn, connect_timeout=2, autocommit=False, options="-c statement_timeout=5000")
            conn.execute("CREATE TABLE IF NOT EXISTS acked (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
            conn.commit()
        n += 1
        conn.execute("INSERT INTO acked (id) VALUES (%s)", (n,))
        conn.commit()
        say(ack=n)
    except Exception as e:  # any failure: not acknowledged; reconnect through the endpoint
        say(err=str(e).strip().replace("\n", " ")[:200], id=n)
        try:
            if conn is not None:
                conn.close()
        except Exception:
            pass
        conn = None
        time.sleep(0.05)
    if pause > 0:
        time.sleep(pause)
