"""The command line: thin typer commands over importable functions."""
