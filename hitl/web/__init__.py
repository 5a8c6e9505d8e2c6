"""Web pages: Jinja2 templates and static assets, no build step."""
