# Find today's scans, newest first, the Databroker 1.x way.
import datetime

from databroker import Broker

db = Broker.named("csx")
today = datetime.date.today().strftime("%Y-%m-%d")
for h in db(plan_name="scan", since=today):
    print("found", h.start["uid"], h.start["scan_id"])
print("none_in_2001", len(list(db(since="2001-01-01", until="2001-12-31"))))
