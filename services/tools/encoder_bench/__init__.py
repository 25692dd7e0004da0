"""`recsys bench encoder`: the encoder against in-process sentence-transformers, over gRPC and on ingestion."""
