"""The legacy Databroker API (``Broker``, ``Header``), built only on ``bluebroker.client``.

Built in the databroker-facade issue; empty until then so that the import name exists.
"""
