"""The dashboard at ``/ui``: server-rendered pages (Jinja2) over the service, no build step."""
