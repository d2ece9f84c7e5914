"""The privacy officer's tools: subject access and erasure, and the retention report."""
