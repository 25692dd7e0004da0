"""The recsys command line."""
