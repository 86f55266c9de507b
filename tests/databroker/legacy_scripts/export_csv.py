# Export the last two runs' primary streams to CSV files in the current folder.
from databroker import Broker

db = Broker.named("csx")
for h in db[-2:]:
    name = "scan_{}.csv".format(h.start["scan_id"])
    h.table().to_csv(name)
    print("wrote", name)
