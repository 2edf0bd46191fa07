"""Tools: what a tool is (``spec``), its schema contracts, and the built-in tools (``builtin``)."""
