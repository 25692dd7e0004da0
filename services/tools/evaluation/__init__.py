"""Offline evaluation: replays a MovieLens dataset through the services' update and blending code."""
