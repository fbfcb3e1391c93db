"""Finding photos: the FAISS index and the encoding that fills it, the searcher, filename search, results."""
