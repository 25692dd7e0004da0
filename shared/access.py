"""Who may call what: roles, the credentials that grant them, and the role each gRPC method needs.

Pure logic (no gRPC, no files): the servers' interceptor (recsys.shared.grpc_security) describes a
caller and asks `AccessPolicy.decide`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# One error for unusable credentials, client side (the light client raises it) and server side;
# re-exported (the `as` form) for the server code that raises and catches it.
from recsys_client.credentials import CredentialsError as CredentialsError


class Role(StrEnum):
    """What a caller may do; admin may do everything read may."""

    READ = "read"
    ADMIN = "admin"

    def grants(self, needed: Role) -> bool:
        return self is Role.ADMIN or self is needed


# Every RPC of the project's services and the role it needs; a test checks this against the protos so
# that a new RPC is classified on purpose. Anything that changes state needs admin.
METHOD_ROLES: Mapping[str, Role] = {
    "/recsys.v1.EncoderService/Embed": Role.READ,
    "/recsys.v1.EncoderService/EmbedStream": Role.READ,
    "/recsys.v1.EncoderService/GetModelInfo": Role.READ,
    "/recsys.v1.RecommenderService/SimilarItems": Role.READ,
    "/recsys.v1.RecommenderService/ForYou": Role.READ,
    "/recsys.v1.RecommenderService/SearchItems": Role.READ,
    "/recsys.v1.MonitorService/GetDriftReport": Role.READ,
    "/recsys.v1.MonitorService/ListAnomalies": Role.READ,
    "/recsys.v1.MonitorService/WatchAlerts": Role.READ,
    "/recsys.v1.MonitorService/ResetReference": Role.ADMIN,
}

# Kubernetes probes and load balancers call health with no credentials.
OPEN_SERVICES = frozenset({"grpc.health.v1.Health"})


def required_role(method: str) -> Role | None:
    """The role a full method name ("/package.Service/Method") needs; None when anyone may call it.

    Reflection needs read (it describes the API to whoever may use it); a method of this project's
    package that is not listed needs admin, so an unclassified RPC fails closed.
    """
    service = method.lstrip("/").split("/", 1)[0]
    if service in OPEN_SERVICES:
        return None
    if method in METHOD_ROLES:
        return METHOD_ROLES[method]
    return Role.ADMIN if service.startswith("recsys.") else Role.READ


# Shorter tokens can be guessed; 16 characters of a random token are ~95 bits or more.
MIN_TOKEN_CHARS = 16
_ENTRY_SEPARATORS = re.compile(r"[\s,]+")
_HASHED = re.compile(r"sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class _TokenEntry:
    digest: bytes
    role: Role
    source: str  # where it was defined ("tokens file, entry 2"): safe to log


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def hashed_entry(role: Role, token: str) -> str:
    """The `role:sha256:<hex>` entry of a token, for a tokens file that holds no usable token."""
    return f"{role}:sha256:{_digest(token).hex()}"


@dataclass(frozen=True)
class TokenBook:
    """The bearer tokens a server accepts, each with its role; several may be valid at once (rotation).

    Tokens are kept only as SHA-256 digests and every entry is compared in constant time, so neither
    a memory dump of the book nor the time a check takes tells anything about a token.
    """

    entries: tuple[_TokenEntry, ...] = ()

    @classmethod
    def parse(cls, text: str, source: str) -> TokenBook:
        """Reads `role:token` entries separated by newlines, spaces or commas; `#` starts a comment line.

        `role:sha256:<64 hex>` names a token by its SHA-256 digest, so that the servers' file holds no
        token a reader of it could use.
        """
        entries: list[_TokenEntry] = []
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        words = [word for word in _ENTRY_SEPARATORS.split("\n".join(lines)) if word]
        for number, word in enumerate(words, start=1):
            where = f"{source}, entry {number}"
            role_name, separator, token = word.partition(":")
            if not separator:
                raise CredentialsError(f"{where}: expected role:token")
            try:
                role = Role(role_name)
            except ValueError:
                # Not echoed: an entry written token-first would put the token in the message.
                roles = ", ".join(r.value for r in Role)
                raise CredentialsError(f"{where}: unknown role before ':' (roles: {roles})") from None
            hashed = _HASHED.fullmatch(token)
            if hashed:
                entries.append(_TokenEntry(bytes.fromhex(hashed[1]), role, where))
                continue
            if len(token) < MIN_TOKEN_CHARS:
                raise CredentialsError(f"{where}: the token is shorter than {MIN_TOKEN_CHARS} characters")
            entries.append(_TokenEntry(_digest(token), role, where))
        return cls(tuple(entries))

    def __add__(self, other: TokenBook) -> TokenBook:
        return TokenBook(self.entries + other.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def role_of(self, token: str) -> Role | None:
        """The role a presented token grants, or None; takes the same time whichever entry matches."""
        presented = _digest(token)
        found: Role | None = None
        for entry in self.entries:
            if hmac.compare_digest(presented, entry.digest) and found is None:
                found = entry.role
        return found


def parse_identity_roles(text: str) -> dict[str, Role]:
    """Reads `identity=role` pairs (comma separated): client certificate names and the role each gets."""
    roles: dict[str, Role] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, separator, role_name = pair.rpartition("=")
        if not separator or not name.strip():
            raise CredentialsError(f"client identity roles: expected name=role, got {pair!r}")
        try:
            roles[name.strip()] = Role(role_name.strip())
        except ValueError:
            raise CredentialsError(f"client identity roles: unknown role {role_name.strip()!r}") from None
    return roles


@dataclass(frozen=True)
class Caller:
    """What the server knows about whoever made a call."""

    token: str | None = field(default=None, repr=False)  # the bearer token, if one was sent
    identities: tuple[str, ...] = ()  # names in a verified client certificate (mTLS)
    loopback: bool = False  # the call came from this machine (127.0.0.0/8, ::1 or a Unix socket)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    refusal: str = ""  # "unauthenticated" or "permission_denied" when not allowed
    message: str = ""
    role: Role | None = None  # the role the call ran with


@dataclass(frozen=True)
class AccessPolicy:
    """Decides each call from the server's credentials: tokens and client certificate identities.

    With none configured (the local default) the server is open for reading and accepts
    state-changing calls only from this machine's loopback: a fresh checkout works with no set-up,
    and nothing on the network can change state. With any configured, every call but health needs
    credentials.
    """

    tokens: TokenBook = field(default_factory=TokenBook)
    identity_roles: Mapping[str, Role] = field(default_factory=dict)
    # Set when credentials were configured at all (a tokens file named, say): then an empty book
    # (a Secret blanked by mistake) refuses everyone instead of opening the server.
    credentials_required: bool = False

    @property
    def configured(self) -> bool:
        return self.credentials_required or len(self.tokens) > 0 or bool(self.identity_roles)

    def decide(self, method: str, caller: Caller) -> Decision:
        needed = required_role(method)
        if needed is None:
            return Decision(True)
        role, refusal = self._role_of(caller)
        if role is None:
            return Decision(False, "unauthenticated", refusal)
        if role.grants(needed):
            return Decision(True, role=role)
        name = method.rsplit("/", 1)[-1]
        hint = (
            " (with no credentials configured on the server, only calls from its own machine may change state)"
            if not self.configured
            else ""
        )
        return Decision(False, "permission_denied", f"{name} needs the {needed} role; this caller has {role}{hint}")

    def _role_of(self, caller: Caller) -> tuple[Role | None, str]:
        if caller.token is not None:
            role = self.tokens.role_of(caller.token)
            if role is None:
                return None, "the bearer token is not valid here (mistyped, revoked or for another deployment)"
            return role, ""
        for identity in caller.identities:
            if identity in self.identity_roles:
                return self.identity_roles[identity], ""
        if self.configured:
            if caller.identities:
                return None, "the client certificate is valid but its name has no role here; send a bearer token"
            return None, "credentials required: send 'authorization: Bearer <token>' metadata"
        return (Role.ADMIN if caller.loopback else Role.READ), ""


def identity_names(values: Iterable[bytes | str]) -> tuple[str, ...]:
    """Certificate names from gRPC's auth context (bytes) as text."""
    return tuple(v.decode(errors="replace") if isinstance(v, bytes) else v for v in values)
