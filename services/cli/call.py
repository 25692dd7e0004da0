"""`recsys call`: call any recsys RPC with a JSON request, over TLS/mTLS and with a token when asked.

A small grpcurl for operators and scripts: the request and the responses are the protos' JSON
mapping; credentials default to the RECSYS_CLIENT_* settings, so a pod's own environment works.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor

from recsys.shared.access import CredentialsError
from recsys.shared.grpc_security import client_security
from recsys.shared.settings import ConnectionSettings
from recsys_client.api import encoder_pb2, monitor_pb2, recommender_pb2
from recsys_client.security import ChannelSecurity, open_channel

HELP = "call a recsys RPC with a JSON request (TLS, mTLS and token options; defaults from RECSYS_CLIENT_*)"
QUIET = True

_FILES = (encoder_pb2.DESCRIPTOR, recommender_pb2.DESCRIPTOR, monitor_pb2.DESCRIPTOR)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", help="host:port of the service")
    parser.add_argument("method", help="e.g. ForYou, MonitorService/ResetReference or recsys.v1.EncoderService/Embed")
    parser.add_argument("request", nargs="?", default="{}", help="the request as JSON (default {})")
    parser.add_argument("--token", help="bearer token (default RECSYS_CLIENT_TOKEN / _FILE; a file keeps it out of ps)")
    parser.add_argument("--token-file", type=Path, help="file holding the bearer token")
    parser.add_argument(
        "--plaintext-token", action="store_true", help="send the token without TLS to another machine (trusted network)"
    )
    parser.add_argument("--tls", action="store_true", help="connect with TLS (implied by --ca or --cert)")
    parser.add_argument("--ca", type=Path, help="CA of the server's certificate (default: the system's)")
    parser.add_argument("--cert", type=Path, help="client certificate (mTLS)")
    parser.add_argument("--key", type=Path, help="the client certificate's key")
    parser.add_argument("--server-name", help="name the server's certificate carries, if not the address's host")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (server streams: until then)")


def find_method(name: str) -> MethodDescriptor:
    """The one RPC a full, Service/Method or bare method name means."""
    wanted = name.lstrip("/").replace("/", ".")
    found = [
        method
        for file in _FILES
        for service in file.services_by_name.values()
        for method in service.methods
        if f".{service.full_name}.{method.name}".endswith(f".{wanted}")
    ]
    if len(found) != 1:
        known = sorted(f"{s.name}/{m.name}" for f in _FILES for s in f.services_by_name.values() for m in s.methods)
        problem = "no such method" if not found else "ambiguous"
        raise ValueError(f"{name}: {problem}; methods: {', '.join(known)}")
    return found[0]


def security_from(args: argparse.Namespace, settings: ConnectionSettings) -> ChannelSecurity:
    defaults = client_security(settings)
    token, token_file = defaults.token, defaults.token_file
    if args.token:
        token, token_file = args.token, None
    elif args.token_file:
        token, token_file = "", args.token_file
    return replace(
        defaults,
        token=token,
        token_file=token_file,
        tls=args.tls or defaults.tls,
        ca_file=args.ca or defaults.ca_file,
        cert_file=args.cert or defaults.cert_file,
        key_file=args.key or defaults.key_file,
        server_name=args.server_name or defaults.server_name,
        plaintext_token=args.plaintext_token or defaults.plaintext_token,
    )


async def call(
    address: str, method: MethodDescriptor, request_json: str, security: ChannelSecurity, timeout: float
) -> None:
    pool = descriptor_pool.Default()
    request_type = message_factory.GetMessageClass(pool.FindMessageTypeByName(method.input_type.full_name))
    response_type = message_factory.GetMessageClass(pool.FindMessageTypeByName(method.output_type.full_name))
    request = json_format.Parse(request_json, request_type())
    path = f"/{method.containing_service.full_name}/{method.name}"
    decode: Any = response_type.FromString
    async with open_channel(address, security) as channel:
        if method.client_streaming:
            raise ValueError(f"{method.name} takes a stream of requests; use a gRPC client library for it")
        if method.server_streaming:
            stream = channel.unary_stream(
                path, request_serializer=request_type.SerializeToString, response_deserializer=decode
            )
            async for response in stream(request, timeout=timeout):
                print(json_format.MessageToJson(response, indent=None), flush=True)
            return
        unary = channel.unary_unary(
            path, request_serializer=request_type.SerializeToString, response_deserializer=decode
        )
        print(json_format.MessageToJson(await unary(request, timeout=timeout)))


def run(args: argparse.Namespace) -> int:
    try:
        method = find_method(args.method)
        security = security_from(args, ConnectionSettings())
        asyncio.run(call(args.address, method, args.request, security, args.timeout))
    except grpc.aio.AioRpcError as exc:
        print(f"{exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except (ValueError, CredentialsError, OSError, json_format.ParseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
