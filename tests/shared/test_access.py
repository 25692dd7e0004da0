"""Access policy: tokens, identities and the role each method needs (pure logic, no server)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recsys.shared.access import (
    METHOD_ROLES,
    AccessPolicy,
    Caller,
    CredentialsError,
    Role,
    TokenBook,
    hashed_entry,
    parse_identity_roles,
    required_role,
)
from recsys.shared.credential_files import TokenSource
from recsys_client.api import encoder_pb2, monitor_pb2, recommender_pb2
from recsys_client.credentials import WatchedFiles

READ_TOKEN = "r" * 8 + "-read-token-0001"
ADMIN_TOKEN = "a" * 8 + "-admin-token-001"
RESET = "/recsys.v1.MonitorService/ResetReference"
FOR_YOU = "/recsys.v1.RecommenderService/ForYou"


def _proto_methods() -> set[str]:
    files = (encoder_pb2.DESCRIPTOR, recommender_pb2.DESCRIPTOR, monitor_pb2.DESCRIPTOR)
    return {f"/{s.full_name}/{m.name}" for f in files for s in f.services_by_name.values() for m in s.methods}


def test_every_rpc_in_the_protos_is_classified_and_only_reset_reference_needs_admin() -> None:
    assert set(METHOD_ROLES) == _proto_methods()
    assert {m for m, role in METHOD_ROLES.items() if role is Role.ADMIN} == {RESET}


def test_health_is_open_reflection_needs_read_and_an_unknown_recsys_method_needs_admin() -> None:
    assert required_role("/grpc.health.v1.Health/Check") is None
    assert required_role("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") is Role.READ
    assert required_role("/recsys.v1.MonitorService/DeleteEverything") is Role.ADMIN


def test_token_book_maps_each_token_to_its_role_and_refuses_others() -> None:
    book = TokenBook.parse(f"# operators\nread:{READ_TOKEN}\nadmin:{ADMIN_TOKEN}\n", "test")
    assert book.role_of(READ_TOKEN) is Role.READ
    assert book.role_of(ADMIN_TOKEN) is Role.ADMIN
    assert book.role_of(READ_TOKEN[:-1]) is None
    assert book.role_of("") is None


def test_token_book_accepts_commas_and_keeps_several_tokens_of_a_role_valid_for_rotation() -> None:
    old, new = "old-read-token-000001", "new-read-token-000002"
    book = TokenBook.parse(f"read:{old}, read:{new}", "env")
    assert book.role_of(old) is Role.READ and book.role_of(new) is Role.READ


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("reader:" + "x" * 20, "unknown role"),
        ("read:tiny-secret", "shorter than 16"),
        ("x" * 20, "expected role:token"),
    ],
)
def test_a_bad_token_entry_is_refused_with_a_message_that_never_contains_the_token(text: str, complaint: str) -> None:
    with pytest.raises(CredentialsError) as raised:
        TokenBook.parse(text, "tokens file")
    assert complaint in str(raised.value)
    secret = text.partition(":")[2] or text
    assert secret not in str(raised.value)


def test_identity_roles_parse_and_refuse_unknown_roles() -> None:
    assert parse_identity_roles("ops=admin, shop-backend=read") == {"ops": Role.ADMIN, "shop-backend": Role.READ}
    with pytest.raises(CredentialsError):
        parse_identity_roles("ops=root")


def test_with_no_credentials_configured_anyone_reads_and_only_loopback_changes_state() -> None:
    policy = AccessPolicy()
    network, local = Caller(loopback=False), Caller(loopback=True)
    assert policy.decide(FOR_YOU, network).allowed
    refused = policy.decide(RESET, network)
    assert (refused.allowed, refused.refusal) == (False, "permission_denied")
    assert "only calls from its own machine" in refused.message
    assert policy.decide(RESET, local).allowed


def test_with_tokens_configured_anonymous_and_wrong_tokens_are_unauthenticated_even_on_loopback() -> None:
    policy = AccessPolicy(TokenBook.parse(f"read:{READ_TOKEN} admin:{ADMIN_TOKEN}", "test"))
    for caller in (Caller(loopback=True), Caller(token="not-a-token-at-all!", loopback=True)):
        decision = policy.decide(FOR_YOU, caller)
        assert (decision.allowed, decision.refusal) == (False, "unauthenticated")
    assert policy.decide("/grpc.health.v1.Health/Check", Caller()).allowed


def test_a_read_token_may_read_but_not_reset_and_an_admin_token_may_do_both() -> None:
    policy = AccessPolicy(TokenBook.parse(f"read:{READ_TOKEN} admin:{ADMIN_TOKEN}", "test"))
    assert policy.decide(FOR_YOU, Caller(token=READ_TOKEN)).allowed
    denied = policy.decide(RESET, Caller(token=READ_TOKEN))
    assert (denied.refusal, denied.message) == (
        "permission_denied",
        "ResetReference needs the admin role; this caller has read",
    )
    assert policy.decide(RESET, Caller(token=ADMIN_TOKEN)).allowed
    assert policy.decide(FOR_YOU, Caller(token=ADMIN_TOKEN)).allowed


def test_a_certificate_identity_grants_its_role_and_an_unlisted_one_is_unauthenticated() -> None:
    policy = AccessPolicy(identity_roles={"ops": Role.ADMIN})
    assert policy.decide(RESET, Caller(identities=("ops",))).allowed
    stranger = policy.decide(FOR_YOU, Caller(identities=("someone",)))
    assert (stranger.allowed, stranger.refusal) == (False, "unauthenticated")


def test_the_tokens_file_is_reread_when_it_changes_and_a_broken_rewrite_keeps_the_last_good_tokens(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"read:{READ_TOKEN}\n")
    source = TokenSource(path)
    assert source.current().role_of(READ_TOKEN) is Role.READ
    path.write_text(f"admin:{ADMIN_TOKEN}\n")
    assert source.current().role_of(READ_TOKEN) is None
    assert source.current().role_of(ADMIN_TOKEN) is Role.ADMIN
    path.write_text("admin:short\n")
    assert source.current().role_of(ADMIN_TOKEN) is Role.ADMIN


def test_a_reload_request_rereads_files_whose_signature_did_not_change(tmp_path: Path) -> None:
    path = tmp_path / "cert.pem"
    path.write_text("one")
    watch = WatchedFiles((path,))
    first = watch.changed()
    assert first is not None
    watch.read(first)
    stat = path.stat()
    path.write_text("two")  # same size; put the old times back: a change stat cannot see
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert watch.changed() is None
    watch.reload()
    assert watch.changed() is not None


def test_a_tokens_file_with_no_token_is_refused_at_start_and_ignored_on_reload(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# nothing yet\n")
    with pytest.raises(CredentialsError, match="holds no token"):
        TokenSource(path)
    path.write_text(f"read:{READ_TOKEN}\n")
    source = TokenSource(path)
    for broken in (b"", b"\xff\xfe not text"):
        path.write_bytes(broken)
        assert source.current().role_of(READ_TOKEN) is Role.READ


def test_once_credentials_are_configured_an_empty_book_refuses_everyone_instead_of_opening() -> None:
    policy = AccessPolicy(TokenBook(), credentials_required=True)
    decision = policy.decide(FOR_YOU, Caller(loopback=True))
    assert (decision.allowed, decision.refusal) == (False, "unauthenticated")


def test_a_token_can_be_listed_by_its_sha256_digest_only() -> None:
    book = TokenBook.parse(hashed_entry(Role.ADMIN, ADMIN_TOKEN), "file")
    assert book.role_of(ADMIN_TOKEN) is Role.ADMIN
    assert ADMIN_TOKEN not in hashed_entry(Role.ADMIN, ADMIN_TOKEN)
