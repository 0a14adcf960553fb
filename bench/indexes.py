"""The benchmark database's indexes, held to what the migrations make.

An index a probe leaves behind changes what the next benchmark measures and leaves no trace in
its report: on Dec 1 one made a filtered search look 5x faster (docs/benchmarks/journal.md,
2026-12-02: "a few filtered rows ordered exactly"). So before a benchmark runs,
``indexes_as_migrated`` compares the benchmark database's indexes with those of a scratch
database the migrations have just built on the same server. It puts back an index
that is missing or defined otherwise (a run killed while it rebuilt one) and refuses to go on
while an index no migration makes is there.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import BENCH_DIR, PROJECT_DIR, log


@dataclass(frozen=True)
class IndexDrift:
    """How a database's indexes (name -> ``CREATE INDEX`` statement) differ from the migrated
    ones."""

    extra: dict[str, str]
    missing: dict[str, str]
    changed: dict[str, str]  # name -> the migrated definition


def index_drift(actual: dict[str, str], migrated: dict[str, str]) -> IndexDrift:
    return IndexDrift(
        extra={name: sql for name, sql in actual.items() if name not in migrated},
        missing={name: sql for name, sql in migrated.items() if name not in actual},
        changed={
            name: sql for name, sql in migrated.items() if name in actual and actual[name] != sql
        },
    )


def index_definitions(conn: Any) -> dict[str, str]:
    """The indexes of the ``public`` schema of ``conn``'s database: name -> definition."""
    rows = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    ).fetchall()
    return dict(rows)


def migrations_digest() -> str:
    """Of every installed app's migration files, a third-party app's too: with the project's
    alone, adding simplejwt's token blacklist kept a cached list that lacked its indexes, and
    every benchmark refused to run."""
    from django.apps import apps

    digest = hashlib.sha256()
    for config in sorted(apps.get_app_configs(), key=lambda config: config.label):
        for path in sorted(Path(config.path).glob("migrations/*.py")):
            digest.update(f"{config.label}/{path.name}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def migrated_index_definitions(url: str, redis_url: str) -> dict[str, str]:
    """The indexes the migrations make on the server of ``url`` (a URL, as ``DATABASE_URL``),
    from a scratch database migrated by ``manage.py migrate``; kept under ``var/bench/`` per set
    of migrations and server version."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        server = conn.info.server_version
        database = conn.info.dbname
    cached = BENCH_DIR / f"migrated-indexes-{migrations_digest()}-{server}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    scratch = f"{database}_migrated"
    admin_url = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    log(f"migrating a scratch database ({scratch}) to learn the indexes the migrations make")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(scratch)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        try:
            scratch_url = urllib.parse.urlsplit(url)._replace(path=f"/{scratch}").geturl()
            env = {**os.environ, "DATABASE_URL": scratch_url, "REDIS_URL": redis_url}
            env.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # a key is all it needs
            migrate = [sys.executable, "manage.py", "migrate", "--no-input", "--verbosity", "0"]
            done = subprocess.run(migrate, cwd=PROJECT_DIR, env=env, capture_output=True)
            if done.returncode != 0:
                reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
                raise SystemExit(f"could not migrate {scratch}: {' '.join(reason)}")
            with psycopg.connect(scratch_url) as conn:
                definitions = index_definitions(conn)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(scratch)))
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(definitions, indent=1, sort_keys=True))
    return definitions


def indexes_as_migrated(url: str, redis_url: str) -> None:
    """Put back the migrations' indexes on ``url`` (missing or changed); refuse to go on while
    it has others."""
    import psycopg

    migrated = migrated_index_definitions(url, redis_url)
    with psycopg.connect(url, autocommit=True) as conn:
        drift = index_drift(index_definitions(conn), migrated)
        if drift.extra:
            drops = " ".join(f'DROP INDEX "{name}";' for name in sorted(drift.extra))
            raise SystemExit(
                f"{conn.info.dbname} has indexes no migration makes, which would change what is"
                f" measured: {', '.join(sorted(drift.extra))}; drop them first ({drops})"
            )
        for name, definition in sorted({**drift.missing, **drift.changed}.items()):
            log(f"index {name}: missing, or not as the migrations make it; rebuilding it")
            try:
                conn.execute(f'DROP INDEX IF EXISTS "{name}"')
                conn.execute("SET maintenance_work_mem = '1GB'")
                conn.execute(definition)
                conn.execute("RESET maintenance_work_mem")
            except psycopg.Error as error:
                raise SystemExit(f"could not rebuild index {name}: {error}") from error
