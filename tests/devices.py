"""Devices for the tests; the HDF5 cameras live in bluebroker.ingest.simulated (the demo uses
them too)."""

from bluebroker.ingest.simulated import HDF5Camera, StreamHDF5Camera

__all__ = ["HDF5Camera", "StreamHDF5Camera"]
