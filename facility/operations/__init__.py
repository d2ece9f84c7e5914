"""The operator's view: health checks and the daemon jobs' bookkeeping."""
