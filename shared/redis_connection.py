"""Connections to Redis as the settings describe them: the URL (user and password included) and TLS files.

A URL `rediss://user:password@host:port/0` speaks TLS and logs in as an ACL user; RECSYS_REDIS_USERNAME
and RECSYS_REDIS_PASSWORD do the same without putting the password in the URL (so the URL can sit in a
ConfigMap and the password in a Secret). The CA and client certificate files (for a server started
with `--tls-auth-clients yes`) come from RECSYS_REDIS_TLS_*.
Every Redis client and FastStream broker of the project is made from these options, so the same
settings reach all of them, the event publisher of the CLI and the tests included.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from recsys.shared.access import CredentialsError
from recsys.shared.settings import ConnectionSettings
from recsys_client.publisher import AsyncEventPublisher


def redis_options(settings: ConnectionSettings) -> dict[str, Any]:
    """Connection keyword arguments beyond the URL: the ACL user and password, TLS files for rediss://."""
    # No CLIENT SETINFO on connect: the services' ACL users may not run it (each refusal would be an
    # ACL LOG entry), and it only labels connections.
    login: dict[str, Any] = {"lib_name": None, "lib_version": None}
    if settings.redis_username:
        login["username"] = settings.redis_username
    password = settings.redis_password_value()
    if password:
        login["password"] = password
    files = {
        "ssl_ca_certs": settings.redis_tls_ca_file,
        "ssl_certfile": settings.redis_tls_cert_file,
        "ssl_keyfile": settings.redis_tls_key_file,
    }
    given = {name: str(path) for name, path in files.items() if path is not None}
    if not given:
        return login
    if not settings.redis_url.startswith("rediss://"):
        # Silently speaking plaintext with TLS files configured would send the password in clear.
        raise CredentialsError("RECSYS_REDIS_TLS_* files are set but RECSYS_REDIS_URL is not rediss://")
    if ("ssl_certfile" in given) != ("ssl_keyfile" in given):
        raise CredentialsError("RECSYS_REDIS_TLS_CERT_FILE and RECSYS_REDIS_TLS_KEY_FILE go together")
    return {**login, **given}


def connect_redis(settings: ConnectionSettings, **extra: Any) -> Redis:
    """A Redis client for the settings' URL, user and TLS (connections open on first use).

    With RECSYS_REDIS_CLUSTER a redis.asyncio.cluster.RedisCluster, typed as Redis: the services use the
    commands both share, each on keys of one slot (a partition and its dead letters, ledgers and groups).
    """
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(
            settings.redis_url, max_connections=settings.redis_max_connections, **redis_options(settings), **extra
        )
        return cast(Redis, cluster)
    return Redis.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections, **redis_options(settings), **extra
    )


def event_publisher(settings: ConnectionSettings) -> AsyncEventPublisher[Redis]:
    """The light client's publisher on the settings' streams (RECSYS_STREAM_PREFIX, RECSYS_STREAM_PARTITIONS),
    as a `publisher` ACL user or whoever the settings log in as; closing it closes its Redis client."""
    return AsyncEventPublisher(
        connect_redis(settings),
        stream_prefix=settings.stream_prefix,
        partitions=settings.stream_partitions,
        owns_redis=True,
    )
