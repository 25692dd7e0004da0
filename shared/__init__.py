"""Code the services share: settings, events, the vector store, stream wiring, gRPC helpers, generated protobuf."""
