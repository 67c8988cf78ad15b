"""Built-in device backends, one plugin module each: cpu, cuda, xpu, mps, npu."""
