"""The index's write side and the model it is built with: the serving bundle's encoders (modelslot), the
batched encoder that turns staged photos into vectors (indexer) and the FAISS index over them (vectorindex),
which photod.search reads."""
