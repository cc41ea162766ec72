"""The `dbtt` command line."""
