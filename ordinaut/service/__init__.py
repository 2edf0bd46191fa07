"""The service layer: every operation once, for the HTTP API, the MCP server and the CLI."""
