"""`dolmen ui`: a web UI over one database, served by Starlette and uvicorn.

``app`` builds the pages and actions (``UiConfig``, ``build_app``), ``guard`` the token
and CSRF checks, ``present`` how stored values are shown, ``svg`` the charts, ``command``
the CLI command. Templates and static assets ship in this package (no CDN: it works
offline). Nothing is imported here, so the CLI's other commands start without Starlette.
"""
