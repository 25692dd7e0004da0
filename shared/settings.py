"""Settings every service shares: where Redis and Qdrant are, stream names and consumer policy.

Each service has one settings class built on ConnectionSettings; every field can be set with
an environment variable named RECSYS_<FIELD> (for example RECSYS_REDIS_URL).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys_client.events import partition_streams


def _default_consumer_name() -> str:
    # Unique per process so two replicas never share a pending list.
    return f"{socket.gethostname()}-{os.getpid()}"


class ConnectionSettings(BaseSettings):
    """Connections and stream consumption, common to all services."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis holding the streams.")
    redis_username: str = Field(
        "", description="Redis ACL user (in place of one in the URL); each service has its own in the manifests."
    )
    redis_password: SecretStr = Field(
        SecretStr(""), description="That user's password (in place of one in the URL), from a Secret."
    )
    redis_password_file: Path | None = Field(
        None, description="File holding that password, in place of redis_password (a Secret mounted as a file)."
    )
    redis_tls_ca_file: Path | None = Field(
        None, description="rediss:// only: CA that signed the Redis server's certificate; unset: the system's CAs."
    )
    redis_tls_cert_file: Path | None = Field(
        None, description="rediss:// only: client certificate, for a Redis that verifies clients (tls-auth-clients)."
    )
    redis_tls_key_file: Path | None = Field(None, description="rediss:// only: the client certificate's key.")
    redis_cluster: bool = Field(
        False,
        description="Redis is a Redis Cluster (RECSYS_REDIS_URL names any node): clients and stream consumers"
        " follow its slots. Needs stream_partitions >= 2, or a stream_prefix with a hash tag such as {recsys}.",
    )
    redis_max_connections: int = Field(
        1024,
        ge=16,
        description="Most connections each Redis client of a process opens (beyond them a command fails): every"
        " stream entry in flight may hold one to ack or publish.",
    )
    qdrant_url: str = Field("", description="Qdrant server URL; empty runs Qdrant embedded under data_dir.")
    qdrant_api_key: SecretStr = Field(
        SecretStr(""),
        description="API key for the Qdrant server, if it needs one (the recommender can use a read-only key).",
    )
    qdrant_api_key_file: Path | None = Field(
        None, description="File holding the Qdrant API key, in place of qdrant_api_key (a Secret mounted as a file)."
    )
    qdrant_tls_ca_file: Path | None = Field(
        None, description="CA that signed the Qdrant server's certificate (an https:// URL); unset: the system's CAs."
    )
    qdrant_embedded_sync: Literal["normal", "full"] = Field(
        "normal",
        description="Embedded Qdrant on disk: 'normal' (SQLite WAL: a process crash loses nothing, a power cut may"
        " lose the last writes) or 'full' (every write synced to disk, slower ingestion). Either way a write request"
        " commits once, not once per point.",
    )
    qdrant_shard_number: int | None = Field(
        None,
        ge=1,
        description="Qdrant server: shards of each collection the store creates; unset: the server's default (one"
        " per peer in a cluster). Fixed once the collection exists.",
    )
    qdrant_replication_factor: int | None = Field(
        None,
        ge=1,
        description="Qdrant server: copies of every shard, on different peers; unset: the server's default"
        " (QDRANT__STORAGE__COLLECTION__REPLICATION_FACTOR).",
    )
    qdrant_write_consistency_factor: int | None = Field(
        None,
        ge=1,
        description="Qdrant server: replicas that must apply a write before it returns (at most the replication"
        " factor); unset: the server's default.",
    )
    qdrant_on_disk_vectors: bool = Field(
        False,
        description="Qdrant server: keep the original vectors in memory-mapped files instead of RAM (with"
        " scalar quantization, searches then read the int8 copy in RAM and the disk only to rescore).",
    )
    qdrant_scalar_quantization: bool = Field(
        False,
        description="Qdrant server: an int8 copy of every vector kept in RAM (quantile 0.99), a quarter of the"
        " float32 size, searched first and rescored with the originals.",
    )
    data_dir: Path = Field(Path("recsys-data"), description="Embedded Qdrant and monitor state live here.")
    stream_prefix: str = Field("recsys", description="Streams are <prefix>:items, <prefix>:interactions, ...")
    stream_partitions: int = Field(
        1,
        ge=1,
        le=1024,
        description="Partitions of each input stream (items by item id, interactions by user id, CRC-32 of the id"
        " modulo this): 1 keeps <prefix>:items and <prefix>:interactions; more makes {<prefix>:items:<k>} and"
        " {<prefix>:interactions:<k>}, k = 0..n-1, each read by its own consumer group. Publishers and services"
        " must agree on it.",
    )
    consumer_name: str = Field(default_factory=_default_consumer_name, description="This process in its groups.")
    consumer_max_records: int = Field(16, ge=1, description="Entries one read moves into this consumer's pending list.")
    consumer_claim_idle_ms: int = Field(
        30_000, ge=100, description="An entry pending this long (its consumer died) is claimed by another."
    )
    consumer_max_attempts: int = Field(
        5,
        ge=1,
        description="After this many failed attempts (errors about the entry itself, not a dependency down) an"
        " entry goes to the dead-letter stream.",
    )
    consumer_max_deliveries: int = Field(
        20,
        ge=2,
        description="An entry delivered this many times without ever finishing (every consumer holding it died)"
        " goes to the dead-letter stream.",
    )
    consumer_concurrency: int = Field(16, ge=1, description="Entries one subscriber handles at once.")
    embeddings_stream_maxlen: int = Field(100_000, ge=1000, description="Approximate cap of the notice stream.")
    event_max_future_s: float = Field(
        300.0,
        ge=0,
        description="An event whose ts is further ahead of this process's clock is dead-lettered (a unit mistake such"
        " as milliseconds, or garbage): stored, it would freeze the decayed vectors it feeds.",
    )
    dead_letter_maxlen: int = Field(
        100_000, ge=1000, description="Approximate cap of each dead-letter stream (the oldest go first)."
    )
    stream_max_entries: int = Field(
        2_000_000,
        ge=0,
        description="Hard cap of each consumed stream, read or not (0: none): past it the oldest entries are"
        " deleted even if a group has not processed them, logged as an error, counted and alerted. Below it,"
        " streams are trimmed only of what every group acknowledged.",
    )
    items_stream_max_entries: int = Field(
        500_000,
        ge=0,
        description="Hard cap of the items stream, in place of stream_max_entries: its entries carry texts.",
    )
    stream_retention_interval_s: float = Field(
        30.0, gt=0, description="How often consumed streams are trimmed and idle consumers removed."
    )
    stream_metrics_interval_s: float = Field(
        15.0,
        gt=0,
        description="How often each service measures the backlog of the streams it reads (lengths, lags, pending,"
        " oldest pending age, dead letters) for its metrics.",
    )
    consumer_expiry_s: float = Field(
        3600.0, gt=0, description="A consumer with nothing pending is removed from its group after this long idle."
    )
    behavior_dims: int = Field(64, ge=8, le=1024, description="Dimensions of the collaborative behavior space.")
    grpc_grace_s: float = Field(5.0, ge=0, description="On SIGTERM, in-flight calls get this long to finish.")
    grpc_max_request_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Largest gRPC request, in bytes on the wire: a larger one is RESOURCE_EXHAUSTED before it is"
        " decoded.",
    )
    grpc_max_inflight_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Bytes of gRPC requests a process handles at once; past it a request is RESOURCE_EXHAUSTED"
        " (retry later) instead of piling up in memory.",
    )
    grpc_max_concurrent_rpcs: int = Field(
        1024,
        ge=1,
        description="gRPC calls a process runs at once (open WatchAlerts streams count); past it a call"
        " is RESOURCE_EXHAUSTED.",
    )
    grpc_tls_cert_file: Path | None = Field(
        None, description="Server certificate chain (PEM); with the key, the gRPC port speaks TLS only."
    )
    grpc_tls_key_file: Path | None = Field(None, description="The server certificate's private key (PEM).")
    grpc_tls_client_ca_file: Path | None = Field(
        None,
        description="CA for client certificates: set, every client must present one it signed (mTLS). Certificate,"
        " key and CA files are re-read when they change or on SIGHUP.",
    )
    auth_tokens_file: Path | None = Field(
        None,
        description="File of `role:token` entries (roles: read, admin), one per line; re-read when it changes."
        " Several tokens may be valid at once (rotation).",
    )
    auth_tokens: SecretStr = Field(
        SecretStr(""), description="More `role:token` entries, separated by commas or spaces (from a Secret)."
    )
    auth_client_roles: str = Field(
        "",
        description="mTLS: `name=role` pairs, comma separated; a verified client certificate whose common or"
        " alternative name is listed gets that role.",
    )
    client_token: SecretStr = Field(
        SecretStr(""), description="Bearer token this process and the CLI present to recsys gRPC servers."
    )
    client_token_file: Path | None = Field(
        None, description="File holding that token, in place of client_token; re-read when it changes (rotation)."
    )
    client_plaintext_token: bool = Field(
        False,
        description="Send the token over plaintext connections to other machines too (a trusted network only);"
        " by default a token goes only over TLS or to localhost.",
    )
    client_tls: bool = Field(False, description="Clients connect with TLS (implied by a CA or certificate file).")
    client_tls_ca_file: Path | None = Field(
        None, description="CA that signed the servers' certificates; unset: the system's CAs."
    )
    client_tls_cert_file: Path | None = Field(None, description="Client certificate, for servers that require mTLS.")
    client_tls_key_file: Path | None = Field(None, description="The client certificate's private key.")
    client_tls_server_name: str = Field(
        "", description="Name the servers' certificates carry, when it differs from the host clients dial."
    )
    health_interval_s: float = Field(
        2.0,
        gt=0,
        description="How often liveness (can this process progress?) and readiness (do Redis and Qdrant"
        " answer?) are checked and reported through gRPC health.",
    )
    log_level: str = Field("INFO", description="Python log level.")
    log_format: Literal["json", "text", ""] = Field(
        "",
        description="json: one JSON object per line; text: for a person at a terminal. Empty: services"
        " (`recsys run`) write JSON on stdout, other commands text on a terminal and JSON otherwise, on stderr.",
    )

    @model_validator(mode="after")
    def _streams_fit_the_cluster(self) -> ConnectionSettings:
        if self.redis_cluster and self.stream_partitions == 1 and not has_hash_tag(self.stream_prefix):
            # <prefix>:items and <prefix>:items:dead-letter would sit in different slots: the dead letter and
            # the ack of its entry could not be one transaction.
            raise ValueError(
                "RECSYS_REDIS_CLUSTER needs RECSYS_STREAM_PARTITIONS >= 2 or a RECSYS_STREAM_PREFIX with a hash"
                " tag such as {recsys}"
            )
        return self

    @property
    def streams(self) -> StreamNames:
        return StreamNames(self.stream_prefix, self.stream_partitions, cluster=self.redis_cluster)

    def redis_password_value(self) -> str:
        return _secret(self.redis_password, self.redis_password_file, "RECSYS_REDIS_PASSWORD_FILE")

    def qdrant_api_key_value(self) -> str:
        return _secret(self.qdrant_api_key, self.qdrant_api_key_file, "RECSYS_QDRANT_API_KEY_FILE")


def _secret(value: SecretStr, file: Path | None, setting: str) -> str:
    """A credential from its file when one is named (read at each connection: a rotated Secret is used by
    the next), else from the variable."""
    if file is None:
        return value.get_secret_value()
    try:
        return file.read_text().strip()
    except OSError as exc:
        # The message names the setting, never the content.
        raise ValueError(f"{setting}: cannot read {file}: {exc.strerror}") from None


def has_hash_tag(key: str) -> bool:
    """Whether Redis Cluster places the key by a hash tag (a non-empty `{...}`) instead of the whole key."""
    start = key.find("{")
    return start >= 0 and key.find("}", start + 1) > start + 1


class StreamNames:
    """The Redis stream keys under one prefix.

    `items` and `interactions` name the input streams; with partitions > 1 their entries live in the
    partitions `item_streams` and `interaction_streams` (recsys_client.events.partition_stream), which
    consumers read one by one. On a cluster, the notice stream is hash-tagged like the partitions, so
    its dead-letter stream and failure ledgers share its slot.
    """

    def __init__(self, prefix: str, partitions: int = 1, *, cluster: bool = False) -> None:
        self.items = f"{prefix}:items"
        self.interactions = f"{prefix}:interactions"
        self.partitions = partitions
        self.item_streams = partition_streams(self.items, partitions)
        self.interaction_streams = partition_streams(self.interactions, partitions)
        embeddings = f"{prefix}:embeddings"
        self.embeddings = "{" + embeddings + "}" if cluster and not has_hash_tag(embeddings) else embeddings
        self.alerts = f"{prefix}:alerts"

    @staticmethod
    def dead_letter(stream: str) -> str:
        """The dead-letter stream of an input stream."""
        return f"{stream}:dead-letter"
