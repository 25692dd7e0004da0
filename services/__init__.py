"""recsys: an event-driven recommendation system (encoder, recommender, monitor)."""
