"""`recsys bench feeds`: SimilarItems and ForYou latency against catalog size, and the embedded engines compared."""
