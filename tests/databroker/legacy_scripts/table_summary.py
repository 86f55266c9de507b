# A typical end-of-scan summary, as written for Databroker 1.x.
from databroker import Broker

db = Broker.named("csx")
h = db[-1]
df = h.table()
print("plan", h.start["plan_name"], "scan_id", h.start["scan_id"], "rows", len(df))
print("det1_mean", df["det1"].mean())
print("first_seq_num", df.index[0])
print("time_dtype", df["time"].dtype)
