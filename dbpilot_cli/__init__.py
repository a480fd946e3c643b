"""The dbpilot command line: a client of the REST API and websockets only (no Django, no server code)."""
