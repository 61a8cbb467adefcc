#!/bin/sh
# One database per service, created when the PostgreSQL volume is first initialised.
set -eu
for database in brand_registry certification inspection assessment gateway; do
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -c "CREATE DATABASE $database"
done
