"""The Python HTTP client (httpx) into numpy, pandas and xarray.

Built in the server/client issue; it will import nothing from server, catalog or ingest.
"""
