-- The look of the login pages per service: a per-service theme (a directory under the server's
-- `[theme] dir`/themes) and a description shown under the service's name. Both optional.

ALTER TABLE services ADD COLUMN theme TEXT;
ALTER TABLE services ADD COLUMN description TEXT;
