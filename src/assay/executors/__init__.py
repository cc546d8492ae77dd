"""Where runs execute: local subprocesses (default); Ray arrives with sweeps."""
