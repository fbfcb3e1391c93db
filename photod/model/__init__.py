"""Model bundles and what runs them without torch: ONNX encoders, the tokenizer, preprocessing."""
