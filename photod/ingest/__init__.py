"""Reading a photo once: decoding, EXIF, and staging it."""
