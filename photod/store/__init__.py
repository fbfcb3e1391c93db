"""What photod keeps: the SQLite catalog and its migrations, the LMDB stage, and the vectors."""
