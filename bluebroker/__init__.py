"""bluebroker: a live data service for Bluesky experiments.

The import name ``bluebroker`` holds only what every part shares (the query vocabulary) and
the ``bluebroker`` command (``cli.py``); storage, ingest, the server and the client live in
``bluebroker.catalog``, ``bluebroker.ingest``, ``bluebroker.server`` and
``bluebroker.client``. ``__version__`` is the installed distribution's (``bluebroker
--version``), or 0.0.0 in a source tree that was never installed.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bluebroker")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
