"""The client side: connecting to Temporal, starting and reading runs, the local dev server."""
