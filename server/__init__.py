"""HTTP out: the FastAPI app, routes, transcoding, authentication, websockets, the web page.

Built in the server/client issue; empty until then so that the import name exists.
"""
