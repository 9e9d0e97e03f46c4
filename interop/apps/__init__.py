"""Small Flask relying parties, one per CAS client library under test.

Each module exposes ``create_app(cas_root, app_root)``: ``cas_root`` is the
tessera origin (``http://127.0.0.1:PORT``, CAS base path ``/cas``) and
``app_root`` the origin the app itself is served on.
"""
