"""The web page: HTML, ES modules and CSS served by ``bluebroker serve`` at ``/``.

No build step and nothing fetched from elsewhere (beamline networks are often offline): the
files here are package data, served as they are by ``bluebroker.server.routes.web``, and the
page speaks only the HTTP API under ``/api/v1``.
"""
