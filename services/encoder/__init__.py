"""The encoder service: text and interactions into vectors in Qdrant."""
