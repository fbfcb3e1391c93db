"""Where photos live: listing folders, reconcile scans, watching, mounts, and whether a drive is there."""
