"""The recommender service: similar-items, for-you and search feeds from Qdrant."""
