"""Create the database named by DATABASE_URL (and the given extra names) if missing."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from notifier.env import load_project_dotenv  # noqa: E402


def main(extra: list[str]) -> None:
    load_project_dotenv()
    url = urlparse(os.environ.get("DATABASE_URL", "postgres://127.0.0.1:5432/notifier"))
    names = [unquote(url.path.lstrip("/")) or "notifier", *extra]
    params = dict(host=url.hostname or "127.0.0.1", port=url.port or 5432, dbname="postgres")
    if url.username:
        params["user"] = unquote(url.username)
    if url.password:
        params["password"] = unquote(url.password)
    try:
        conn = psycopg.connect(**params, autocommit=True)
    except psycopg.OperationalError:
        params["user"] = "postgres"
        conn = psycopg.connect(**params, autocommit=True)
    with conn:
        for name in names:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"created database {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
