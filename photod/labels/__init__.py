"""The owner's words: captions, right/wrong marks, and the caption files people bring."""
