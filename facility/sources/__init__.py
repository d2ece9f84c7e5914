"""What outside sources hand the core: ingest with its checks, the records they carry, rejections, blocked devices."""
