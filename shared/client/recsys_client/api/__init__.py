"""Generated gRPC and protobuf code for recsys.v1 (made by proto/generate.py; do not edit)."""
