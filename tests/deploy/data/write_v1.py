"""How catalog-v1.db and catalog-v1.sql were made: bluebroker's own code at schema version 1
(the commit before a4c09f2, which brought version 2) writing two runs, for the upgrade tests in
tests/deploy/test_backup_upgrade.py. Not run by the tests; to make the files again:

    mkdir -p /tmp/v1 /tmp/v1pkg && git archive a4c09f2~1 | tar -x -C /tmp/v1
    cp -r /tmp/v1/bluebroker /tmp/v1pkg/ && cp -r /tmp/v1/catalog /tmp/v1pkg/bluebroker/catalog
    cp -r /tmp/v1/ingest /tmp/v1pkg/bluebroker/ingest
    PYTHONPATH=/tmp/v1pkg python write_v1.py sqlite:///catalog-v1.db
    createdb v1 && PYTHONPATH=/tmp/v1pkg python write_v1.py postgresql://postgres@HOST/v1
    pg_dump --format=plain --no-owner --no-privileges v1 > catalog-v1.sql
"""

import sys

from event_model import compose_run

from bluebroker.catalog import open_catalog
from bluebroker.catalog.schema import SCHEMA_VERSION
from bluebroker.ingest import CatalogWriter

RUNS = {"v1-run-1": (1, 5), "v1-run-2": (2, 3)}  # uid: (scan_id, events); x = i * scan_id

if __name__ == "__main__":
    assert SCHEMA_VERSION == 1, "run this with the version-1 code on PYTHONPATH"
    catalog = open_catalog(sys.argv[1], create=True)
    writer = CatalogWriter(catalog, "bmm/raw")
    for uid, (scan_id, events) in RUNS.items():
        run = compose_run(metadata={"scan_id": scan_id, "sample": f"s{scan_id}"}, uid=uid)
        desc = run.compose_descriptor(
            name="primary", data_keys={"x": {"source": "s", "dtype": "number", "shape": []}}
        )
        docs = [("start", run.start_doc), ("descriptor", desc.descriptor_doc)]
        docs += [
            (
                "event",
                desc.compose_event(
                    data={"x": float(i) * scan_id}, timestamps={"x": 1.0 + i}, seq_num=i + 1
                ),
            )
            for i in range(events)
        ]
        docs.append(("stop", run.compose_stop()))
        writer.write_many(docs)
