"""Running photod: the daemon, the one-shot scan, the model worker, status, doctor and systemd."""
